"""Server-side HTML: one Jinja environment (autoescaped), the filters pages share, and links
into the Airflow UI."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from hub.errors import ADVICE

from . import charts

TEMPLATES = Path(__file__).parent / "templates"


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime):  # a date (a receipt's value date): no time to show
        return value.isoformat()
    return value.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if value.tzinfo else "")


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f}s"
    minutes, sec = divmod(int(value), 60)
    return f"{minutes}m{sec:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _yuan(fen: Any) -> str:
    """Integer fen as yuan with thousands separators, exactly (no float on the way)."""
    if fen is None or fen != fen:
        return "—"
    sign, fen = ("-" if int(fen) < 0 else ""), abs(int(fen))
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def airflow_root() -> str:
    """Path prefix of the Airflow UI on this server (``[api] base_url``), ending in '/'."""
    try:
        from airflow.api_fastapi.app import API_ROOT_PATH

        return API_ROOT_PATH or "/"
    except Exception:  # noqa: BLE001 - outside the API server, assume the root
        return "/"


def task_log_url(flow: str, run_id: str, step: str) -> str:
    """The Airflow UI page of one task of one DAG run (its log tab)."""
    return f"{airflow_root()}dags/{quote(flow, safe='')}/runs/{quote(run_id, safe='')}/tasks/{quote(step, safe='')}"


def dag_run_url(flow: str, run_id: str) -> str:
    return f"{airflow_root()}dags/{quote(flow, safe='')}/runs/{quote(run_id, safe='')}"


_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)
_env.filters.update(when=_when, seconds=_seconds, pretty=_pretty, yuan=_yuan, q=lambda v: quote(str(v), safe=""))
_env.globals.update(task_log_url=task_log_url, dag_run_url=dag_run_url, trend=charts.trend, advice=ADVICE,
                    urlencode=urlencode)


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the mount path as ``base`` and the signed-in operator."""
    base = request.scope.get("root_path", "").rstrip("/")
    html = _env.get_template(template).render(base=base, request=request, **context)
    return HTMLResponse(html, status_code=status_code)
