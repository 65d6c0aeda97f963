"""``python -m sandbox chaos``: prove that every write happens once under mixed faults.

Two worlds are seeded alike in DIR: ``clean`` (no faults) and ``chaos``. In the chaos world
every stand-in answers ``rate`` of its requests with a fault of every kind at once (429 with
Retry-After, 500/502, slow answers, expired tokens, malformed and truncated bodies, answers
lost after the write was applied); every flow runs with the DAGs' retries, and each run is
killed with SIGKILL once its write step has sent a few writes, then that step is run again;
customers, products and orders run once more under faults (the next scheduled runs) before
the U8 warehouse ships. Then faults go off and every flow runs once more. The clean world runs
the same passes.

The verdict compares what the targets hold (records, natural keys held twice, money to the
fen) in the chaos world with the clean world, checks every run's accounting (in = written +
skipped + quarantined, and the census of the targets) and what the hub says it holds (its
xref) against the clean world. Any difference exits 1. DIR keeps both worlds' sandbox
databases (same schema as the demo's), hub stores and logs for inspection.

This module drives the hub only through its command lines (``python -m flows run``,
``python -m hub xref``) and reads only the stand-ins' own databases: the sandbox shares no
code with what it tests.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import requests

from sandbox.faults import KINDS
from sandbox.harness import Sandbox

ROOT = Path(__file__).resolve().parent.parent
#: Flows in the demo's order; the U8 warehouse ships between the two halves.
BEFORE_SHIP = ("customer_master", "product_master", "sales_orders")
AFTER_SHIP = ("shipments", "stock", "receipts")
RETRIES = 3            # the DAGs' task retries (flows/settings.py TASK_RETRIES)
KILL_AFTER_WRITES = 3  # the kill lands once this many writes reached the stand-ins
SLOW_SECONDS = 0.5
RETURNED = 3           # serial-numbered units the customers send back after the warehouse ships
AS_OF = "2025-06-30"   # the seeded world's today (overdue plans), as the demo sets it

#: What the targets hold, per world: (label, database, SQL giving one row of numbers).
HOLDINGS: tuple[tuple[str, str, str], ...] = (
    ("crm account with a U8 code", "crm", "select count(*) from account where coalesce(erpCode__c, '') != ''"),
    ("crm product", "crm", "select count(*) from product"),
    ("crm order with a U8 code", "crm", "select count(*) from \"order\" where coalesce(erpCode__c, '') != ''"),
    ("crm shipment__c", "crm", "select count(*) from shipment__c"),
    ("crm asset__c", "crm", "select count(*) from asset__c"),
    ("crm asset__c returned", "crm", "select count(*) from asset__c where assetStatus__c = '已退回'"),
    ("crm stock__c", "crm", "select count(*) from stock__c"),
    ("crm orderProduct short of stock", "crm", "select count(*) from orderProduct where coalesce(stockShortage__c, '') != ''"),
    ("crm paymentApplication (回款)", "crm", "select count(*) from paymentApplication"),
    ("crm paymentPlan overdue", "crm", "select count(*) from paymentPlan where overdue__c = 1"),
    ("u8 Customer", "u8", "select count(*) from Customer"),
    ("u8 SO_SOMain open", "u8", "select count(*) from SO_SOMain where cCloser is null"),
    ("u8 SO_SOMain closed", "u8", "select count(*) from SO_SOMain where cCloser is not null"),
    ("u8 收款单 (Ap_CloseBill 48)", "u8", "select count(*) from Ap_CloseBill where cFlag = 'AR' and cVouchType = '48'"),
)
#: Money the targets hold, summed exactly (text → Decimal, compared to the fen).
MONEY: tuple[tuple[str, str, str], ...] = (
    ("crm paymentApplication amount", "crm", "select amount from paymentApplication"),
    ("crm paymentPlan received", "crm", "select receivedAmount__c from paymentPlan"),
    ("u8 SO_SODetails iSum (open orders)", "u8", "select d.iSum from SO_SODetails d join SO_SOMain m on m.ID = d.ID "
                                                  "where m.cCloser is null"),
    ("u8 收款单 iAmount", "u8", "select iAmount from Ap_CloseBill where cFlag = 'AR' and cVouchType = '48'"),
)
#: Natural keys a target must never hold twice: (label, database, table, column).
UNIQUE: tuple[tuple[str, str, str, str], ...] = (
    ("crm product productCode__c", "crm", "product", "productCode__c"),
    ("crm shipment__c dispatchCode__c", "crm", "shipment__c", "dispatchCode__c"),
    ("crm asset__c serialNumber__c", "crm", "asset__c", "serialNumber__c"),
    ("crm stock__c stockKey__c", "crm", "stock__c", "stockKey__c"),
    ("crm paymentApplication hubId__c", "crm", "paymentApplication", "hubId__c"),
    ("crm order hubId__c", "crm", "order", "hubId__c"),
    ("u8 Customer cCusRegCode (USCC)", "u8", "Customer", "cCusRegCode"),
    ("u8 biz_id → code", "u8", "sandbox_bizid", "code"),
    ("u8 收款单 biz_id → code", "u8", "sandbox_accept", "code"),
)


def _is_write(path_key: str) -> bool:
    """A request counter key (``METHOD /path``) that changes a record in a stand-in."""
    method, _, path = path_key.partition(" ")
    if method == "PATCH":
        return True
    return method == "POST" and ("/xobjects/" in path or (path.startswith("/api/") and not path.endswith("/get")))


@dataclass
class FlowRun:
    flow: str
    run_id: str
    rc: int = 0
    killed_after: int | None = None
    report: dict[str, Any] = field(default_factory=dict)


@dataclass
class World:
    """One seeded sandbox, its hub store and logs under ``folder``."""

    name: str
    folder: Path
    accounts: int
    seed: int
    runs: list[FlowRun] = field(default_factory=list)

    def __post_init__(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)  # a world starts fresh: no hub store of an earlier run
        (self.folder / "logs").mkdir(parents=True)
        self.sb = Sandbox(self.folder / "sandbox", accounts=self.accounts, seed=self.seed).seed()
        self.seeded_twice = self.duplicates()  # the tenant's own doubles (messy seed), not the hub's doing

    def env(self) -> dict[str, str]:
        env = {**os.environ, **self.sb.connections(), "HUB_STORE_URL": f"sqlite:///{self.folder / 'hub.db'}",
               "HUB_VAR_DIR": str(self.folder / "var"), "HUB_RECEIPTS_AS_OF": AS_OF,
               "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
        env.setdefault("AIRFLOW_HOME", str(ROOT / "var" / "airflow"))
        env.setdefault("AIRFLOW_CONFIG", str(ROOT / "airflow.cfg"))
        return env

    def _flows(self, run_id: str, flow: str, *steps: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "flows", "run", flow, "--run-id", run_id, "--retries", str(RETRIES), "--json"]
        for s in steps:
            cmd += ["--step", s]
        name = f"{run_id}{'-' + steps[0] if steps else ''}"
        log = open(self.folder / "logs" / f"{name}.log", "ab")
        # stdout into a file, never a pipe: while a run is watched for its kill nobody reads a pipe,
        # and a run that prints more than the pipe holds would block before its first write
        out = open(self.folder / "logs" / f"{name}.out", "w+b")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env(), stdout=out, stderr=log)
        proc.printed = out  # type: ignore[attr-defined]
        log.close()  # the child holds its own descriptor
        return proc

    def writes(self) -> int:
        return sum(n for stats in self.sb.stats().values() for k, n in stats.get("by_path", {}).items() if _is_write(k))

    def run(self, flow: str, run_id: str, kill: bool = False) -> FlowRun:
        """Run every step of ``flow``; with ``kill``, SIGKILL it mid-write and run the write step again."""
        fr = FlowRun(flow, run_id)
        base = self.writes() if kill else 0
        proc = self._flows(run_id, flow)
        if kill:
            while proc.poll() is None:
                sent = self.writes() - base
                if sent >= KILL_AFTER_WRITES:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    fr.killed_after = sent
                    break
                time.sleep(0.05)
        out = _output(proc)
        if fr.killed_after is not None:
            proc = self._flows(run_id, flow, "write_back")
            out = _output(proc)
        fr.rc = proc.returncode
        fr.report = _last_json(out)
        self.runs.append(fr)
        return fr

    def faults(self, rate: float, seed: int) -> None:
        for url in (self.sb.crm_url, self.sb.u8_url, self.sb.registry_url):
            requests.post(f"{url}/__sandbox/faults", json={"rate": rate, "kinds": list(KINDS), "seed": seed,
                                                           "slow_seconds": SLOW_SECONDS}, timeout=10).raise_for_status()

    def passes(self, rate: float, seed: int, say: Callable[[str], None]) -> None:
        """The chaos passes (the clean world runs them with ``rate`` 0 and no kills)."""
        chaotic = rate > 0
        self.faults(rate, seed)
        for flow in BEFORE_SHIP:
            self._say_run(self.run(flow, f"{self.name}-1-{flow}", kill=chaotic), say)
        # the next scheduled runs, still under faults: what a fault deferred by design (a registry
        # lookup that failed every retry, an order waiting for that customer) goes now, so the
        # warehouse ships the same orders in both worlds
        for flow in BEFORE_SHIP:
            self._say_run(self.run(flow, f"{self.name}-1b-{flow}"), say)
        self.sb.u8_ship()
        self.sb.u8_return(self._first_serials(RETURNED))   # a customer sends units back: 退货单 in U8
        for flow in AFTER_SHIP:
            self._say_run(self.run(flow, f"{self.name}-1-{flow}", kill=chaotic), say)
        self.faults(0.0, seed)
        for flow in (*BEFORE_SHIP, *AFTER_SHIP):
            self._say_run(self.run(flow, f"{self.name}-2-{flow}"), say)

    def _first_serials(self, n: int) -> list[str]:
        """The first ``n`` serial numbers U8 shipped (by delivery line)."""
        con = sqlite3.connect(self.sb.u8_db)
        try:
            rows = con.execute("select cInvSN from DispatchLists where cInvSN is not null order by AutoID").fetchall()
        finally:
            con.close()
        return [sn for (text,) in rows for sn in text.split(",")][:n]

    def _say_run(self, fr: FlowRun, say: Callable[[str], None]) -> None:
        kill = f", killed after {fr.killed_after} writes and its write step run again" if fr.killed_after else ""
        say(f"  {self.name}: {fr.flow} {fr.run_id} exit {fr.rc}{kill}")

    def holdings(self) -> dict[str, Any]:
        dbs = {"crm": self.sb.crm_db, "u8": self.sb.u8_db}
        out: dict[str, Any] = {}
        for label, db, sql in HOLDINGS:
            out[label] = _scalar(dbs[db], sql)
        for label, db, sql in MONEY:
            out[label] = str(sum((Decimal(str(v)) for (v,) in _rows(dbs[db], sql) if v not in (None, "")),
                                 Decimal(0)).quantize(Decimal("0.01")))
        return out

    def duplicates(self) -> dict[str, list[tuple[Any, int]]]:
        dbs = {"crm": self.sb.crm_db, "u8": self.sb.u8_db}
        return {label: _rows(dbs[db], f'select "{col}", count(*) from "{table}" where coalesce("{col}", \'\') != \'\' '
                                      f'group by "{col}" having count(*) > 1')
                for label, db, table, col in UNIQUE if _has_table(dbs[db], table)}

    def new_duplicates(self) -> dict[str, list[tuple[Any, int]]]:
        """Keys held more often now than the seed already held them (at most ten per kind)."""
        out = {}
        for label, rows in self.duplicates().items():
            before = dict(self.seeded_twice.get(label, []))
            if extra := [r for r in rows if r[1] > before.get(r[0], 1)]:
                out[label] = extra[:10]
        return out

    def hub_xref(self) -> dict[str, int]:
        out = subprocess.run([sys.executable, "-m", "hub", "xref", "--json"], cwd=ROOT, env=self.env(),
                             capture_output=True, text=True, check=True).stdout
        return {f"hub xref {c['entity']}/{c['system']}": c["keys"] for c in json.loads(out)}


def _output(proc: subprocess.Popen) -> bytes:
    """What a run printed, once it has ended (its stdout file, see ``Chaos._flows``)."""
    proc.wait()
    with proc.printed as fh:  # type: ignore[attr-defined]
        fh.seek(0)
        return fh.read()


def _last_json(out: bytes) -> dict[str, Any]:
    for line in reversed(out.decode("utf-8", "replace").splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return {}
    return {}


def _rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _scalar(db: Path, sql: str) -> int:
    return int(_rows(db, sql)[0][0])


def _has_table(db: Path, table: str) -> bool:
    return bool(_rows(db, f"select 1 from sqlite_master where type = 'table' and name = '{table}'"))


def _accounting(world: World) -> tuple[list[str], int]:
    """Lines ``flow system: in = written + skipped + quarantined`` per run, and the failures."""
    lines, bad = [], 0
    for fr in world.runs:
        if fr.rc != 0 or not fr.report:
            lines.append(f"  {fr.run_id}: FAILED (exit {fr.rc}); see {world.folder / 'logs'}")
            bad += 1
            continue
        for system, t in fr.report.get("systems", {}).items():
            ok = t.get("adds_up") and t["in"] == t["written"] + t["skipped"] + t["quarantined"]
            bad += not ok
            lines.append(f"  {fr.run_id:<32} {system:<5} in {t['in']:>5} = written {t['written']:>5} + skipped "
                         f"{t['skipped']:>5} + quarantined {t['quarantined']:>4}  {'ok' if ok else 'DOES NOT ADD UP'}")
        for system, held in fr.report.get("targets", {}).items():
            bad += bool(held["duplicates"])
            lines.append(f"  {fr.run_id:<32} {system:<5} holds {held['held']} records for the {held['keys']} keys "
                         f"written ({held['duplicates']} held twice)")
    return lines, bad


def chaos(directory: Path, rate: float, seed: int, accounts: int, say: Callable[[str], None] = print) -> int:
    """Run both worlds side by side and print the verdict; 0 when the chaos world equals the clean one."""
    directory.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    worlds = {name: World(name, directory / name, accounts, 42) for name in ("clean", "chaos")}
    for w in worlds.values():
        w.sb.start()
    try:
        say(f"chaos: {accounts} accounts, faults at {rate:.0%} of every kind ({', '.join(KINDS)}), seed {seed}, "
            f"a SIGKILL in each write step; worlds in {directory}")
        errors: list[BaseException] = []

        def drive(w: World) -> None:
            try:
                w.passes(rate if w.name == "chaos" else 0.0, seed, say)
            except BaseException as exc:  # noqa: BLE001 - reported below, the other world goes on
                errors.append(exc)

        threads = [threading.Thread(target=drive, args=(w,)) for w in worlds.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        served = {name: stats.get("faults", {}) for name, stats in worlds["chaos"].sb.stats().items()}
        clean, hostile = worlds["clean"], worlds["chaos"]
        want = {**clean.holdings(), **clean.hub_xref()}
        got = {**hostile.holdings(), **hostile.hub_xref()}
        dupes = hostile.new_duplicates()
        clean_dupes = clean.new_duplicates()
        seeded = {k: v[:10] for k, v in hostile.seeded_twice.items() if v}
    finally:
        for w in worlds.values():
            w.sb.stop()

    say("\nfaults served in the chaos world: " + "; ".join(
        f"{name} " + ", ".join(f"{k} {n}" for k, n in sorted(f.items())) for name, f in served.items()))
    lines, bad = _accounting(hostile)
    say("\nper run and system (chaos world):")
    for line in lines:
        say(line)
    clean_lines, clean_bad = _accounting(clean)
    if clean_bad:
        say("\nthe clean world itself failed:")
        for line in clean_lines:
            say(line)
    say(f"\n{'what the targets hold':<42}{'clean':>16}{'chaos':>16}")
    diffs = 0
    for key in dict.fromkeys([*want, *got]):
        same = want.get(key) == got.get(key)
        diffs += not same
        say(f"  {key:<40}{str(want.get(key, '-')):>16}{str(got.get(key, '-')):>16}{'' if same else '  DIFFERENT'}")
    for label, rows in dupes.items():
        say(f"  held twice in the chaos world: {label}: {rows}")
    for label, rows in seeded.items():
        say(f"  held twice in the seeded tenant already (its own data, left as it was): {label}: {rows}")
    for label, rows in clean_dupes.items():
        say(f"  held twice in the clean world too (not a fault's doing): {label}: {rows}")
    problems = diffs + len(dupes) + bad + clean_bad
    verdict = "exactly once: the chaos world holds what the clean world holds" if not problems else \
        f"{problems} DIFFERENCES ({diffs} holdings, {len(dupes)} duplicated keys, {bad + clean_bad} runs)"
    say(f"\nverdict: {verdict}  ({time.monotonic() - started:.0f}s)")
    return 0 if not problems else 1
