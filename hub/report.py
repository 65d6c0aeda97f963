"""The run report: what each step did and where every record read ended up.

Accounting is checked, not assumed: for every system, records read = written + skipped +
quarantined, where "written" covers every outcome that stored or sent the record.
"""
from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import select

from hub import config, model, store

#: Which accounting bucket an outcome falls in (in = written + skipped + quarantined).
SKIPPED = ("skipped", "waiting")
QUARANTINED = ("quarantined", "held back")


def bucket(outcome: str) -> str:
    if outcome.startswith(QUARANTINED):
        return "quarantined"
    if outcome.startswith(SKIPPED):
        return "skipped"
    return "written"


def build(run_id: str, url: str | None = None) -> dict[str, Any]:
    eng = store.engine(url)
    with eng.begin() as conn:
        run = conn.execute(select(model.sync_run).where(model.sync_run.c.run_id == run_id)).first()
        steps = [dict(r._mapping) for r in conn.execute(select(model.sync_step).where(
            model.sync_step.c.run_id == run_id).order_by(model.sync_step.c.started_at))]
        outcomes = store.stage_read(conn, run_id, "outcome")
    systems: dict[str, Any] = {}
    if not outcomes.empty:
        for system, part in outcomes.groupby("system"):
            tally = part["outcome"].value_counts().to_dict()
            buckets = part["outcome"].map(bucket).value_counts()
            skipped = int(buckets.get("skipped", 0))
            quarantined = int(buckets.get("quarantined", 0))
            written = int(buckets.get("written", 0))
            systems[str(system)] = {"in": len(part), "written": written, "skipped": skipped,
                                    "quarantined": quarantined, "outcomes": {k: int(v) for k, v in tally.items()},
                                    "adds_up": len(part) == written + skipped + quarantined}
    return {
        "run_id": run_id,
        "flow": run.flow if run else None,
        "status": run.status if run else None,
        "started_at": str(run.started_at) if run else None,
        "finished_at": str(run.finished_at) if run and run.finished_at else None,
        "steps": [{k: (str(v) if k.endswith("_at") else v) for k, v in s.items() if k not in ("run_id", "flow")}
                  for s in steps],
        "systems": systems,
    }


def save(run_id: str, url: str | None = None) -> dict[str, Any]:
    """Build the report and keep it under var/reports/ as JSON."""
    rep = build(run_id, url)
    folder = config.var_dir() / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    (folder / f"{rep['flow']}__{safe}.json").write_text(json.dumps(rep, ensure_ascii=False, indent=2, default=str),
                                                         encoding="utf-8")
    return rep


def render(rep: dict[str, Any]) -> str:
    """Plain text for a terminal."""
    lines = [f"run {rep['run_id']}  flow {rep['flow']}  status {rep['status']}",
             f"  {'step':<11}{'status':<9}{'sec':>6}{'read':>8}{'mapped':>8}{'rejected':>9}{'merged':>8}"
             f"{'written':>9}{'skipped':>9}{'quarant.':>9}"]
    for s in rep["steps"]:
        lines.append(f"  {s['step']:<11}{s['status']:<9}{s['seconds'] or 0:>6.1f}{s['read']:>8}{s['mapped']:>8}"
                     f"{s['rejected']:>9}{s['merged']:>8}{s['written']:>9}{s['skipped']:>9}{s['quarantined']:>9}")
        if s.get("error_text"):
            lines.append(f"    {s['error_class']}: {s['error_text']}")
    for system, t in rep["systems"].items():
        ok = "adds up" if t["adds_up"] else "DOES NOT ADD UP"
        lines.append(f"  {system}: in {t['in']} = written {t['written']} + skipped {t['skipped']} + "
                     f"quarantined {t['quarantined']}  ({ok})")
        for outcome, n in sorted(t["outcomes"].items(), key=lambda kv: -kv[1]):
            lines.append(f"      {n:>7}  {outcome}")
    return "\n".join(lines)
