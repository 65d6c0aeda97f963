"""What the benchmarks share: a flow run in a child process (wall time and its own peak RSS),
the run log's per-step figures, and one child process per size so that each size's peak
memory is its own."""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent


def run_flow(flow: str, run_id: str, env: dict[str, str]) -> dict[str, float]:
    """One full flow run in a child process: wall seconds and peak RSS in MiB."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "flows", "run", flow, "--run-id", run_id],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{flow} {run_id} failed: {proc.stderr.read().decode()[-2000:]}")
    return {"seconds": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def steps(store_db: Path, run_id: str) -> list[dict]:
    """The run log's per-step seconds and counts of one run."""
    con = sqlite3.connect(store_db)
    con.row_factory = sqlite3.Row
    try:
        rows = con.execute("select step, seconds, read, mapped, rejected, merged, written, skipped, quarantined "
                           "from sync_step where run_id = ? order by started_at", (run_id,)).fetchall()
        return [dict(r) for r in rows]
    finally:
        con.close()


def per_size(script: str, one: Callable[[int], dict[str, Any]], default_sizes: Sequence[int],
             argv: Sequence[str] | None = None) -> list[dict[str, Any]] | None:
    """``--one N`` measures one size in this process, prints it and returns None; otherwise
    each of ``--sizes`` runs as ``script --one N`` in its own child process (so peak RSS is
    that size's) and their rows come back. A failing child ends the benchmark."""
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=list(default_sizes))
    p.add_argument("--one", type=int)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one)))
        return None
    rows = []
    for n in args.sizes:
        out = subprocess.run([sys.executable, script, "--one", str(n)], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        if out.returncode:
            raise SystemExit(f"size {n} failed:\n{out.stderr[-3000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    return rows
