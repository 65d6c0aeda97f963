"""Where the hub keeps its state, from the environment (never from code)."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    """The folder for embedded state (SQLite files, reports); ``HUB_VAR_DIR`` overrides."""
    path = Path(os.environ.get("HUB_VAR_DIR", PROJECT_ROOT / "var"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def store_url() -> str:
    """The hub store's SQLAlchemy URL: ``HUB_STORE_URL``, else a SQLite file under var/."""
    return os.environ.get("HUB_STORE_URL") or f"sqlite:///{var_dir() / 'hub.db'}"


def console_url() -> str:
    """Base URL of the operations console, for links in alerts and reports."""
    return os.environ.get("HUB_CONSOLE_URL", "http://localhost:8080/hub")
