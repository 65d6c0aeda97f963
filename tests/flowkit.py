"""Helpers the flow tests share: run a flow in-process, look into the sandbox systems."""
from __future__ import annotations

import sqlite3
from typing import Any


from hub import report, runner


def run_flow(flow: str, run_id: str, retries: int = 3) -> dict[str, Any]:
    """All steps of ``flow`` through the step runner, retrying transient failures as the
    DAG's ``retries`` does; returns the report."""
    import importlib

    from hub.errors import TransientError

    functions = importlib.import_module(f"flows.{flow}").STEP_FUNCTIONS
    for step in runner.STEPS:
        for attempt in range(retries + 1):
            try:
                runner.run_step(flow, step, run_id, functions[step])
                break
            except TransientError:
                if attempt == retries:
                    raise
    runner.finish_run(run_id, "success")
    return report.build(run_id)


def step(rep: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in rep["steps"] if s["step"] == name)


def query(db, sql: str, *args) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def u8_customers(sb) -> dict[str, dict[str, Any]]:
    con = sqlite3.connect(sb.u8_db)
    con.row_factory = sqlite3.Row
    try:
        return {r["cCusCode"]: dict(r) for r in con.execute(
            "select cCusCode, cCusName, cCusRegCode, cCusPhone, cCusAddress, pubufts from Customer")}
    finally:
        con.close()


def crm_accounts(sb) -> dict[str, dict[str, Any]]:
    con = sqlite3.connect(sb.crm_db)
    con.row_factory = sqlite3.Row
    try:
        return {str(r["id"]): dict(r) for r in con.execute("select * from account")}
    finally:
        con.close()


class CrmClient:
    """A salesperson editing an account through the real 销售易 API of the sandbox."""

    def __init__(self, sb) -> None:
        self.base = sb.crm_url
        self.session = sb.crm_session(timeout=10)

    def patch(self, apikey: str, rid: str, data: dict[str, Any]) -> dict[str, Any]:
        r = self.session.patch(f"{self.base}/rest/data/v2.0/xobjects/{apikey}/{rid}", json={"data": data},
                               timeout=10)
        r.raise_for_status()
        return r.json()
