"""``python -m flows run <flow> [--step S] --run-id R [--retries N]``: run a flow's steps outside Airflow.

For operators retrying one step by hand and for tests (and the chaos command) that kill a
step mid-way; the scheduled path is the Airflow DAG, which calls the same step runner.
``--retries`` retries a step's transient failures the way the DAGs' task retries do.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from pathlib import Path

from flows import settings
from hub import report, runner
from hub.errors import TransientError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m flows")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run one step, or all steps in order")
    r.add_argument("flow")
    r.add_argument("--step", action="append", help="a step name; repeat for several (default: all)")
    r.add_argument("--run-id", required=True)
    r.add_argument("--retries", type=int, default=0,
                   help=f"retry a step's transient failures this often, with the DAGs' backoff (they use {settings.TASK_RETRIES})")
    r.add_argument("--json", action="store_true", help="print the run's report as JSON")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    functions = step_functions(args.flow)
    if functions is None:
        print(f"error: no flow {args.flow!r} (flows: {', '.join(known_flows())})", file=sys.stderr)
        return 2
    steps = args.step or list(runner.STEPS)
    unknown = [s for s in steps if s not in functions]
    if unknown:
        print(f"error: {args.flow} has no step {unknown[0]!r} (steps: {', '.join(functions)})", file=sys.stderr)
        return 2
    try:
        for step in steps:
            _run_with_retries(args.flow, step, args.run_id, functions[step], args.retries)
    except Exception as exc:  # noqa: BLE001 - reported in the run log, exit non-zero
        runner.finish_run(args.run_id, "failed", exc)
        print(f"{args.flow} {args.run_id}: failed at {step}: {exc}", file=sys.stderr)
        return 1
    if steps[-1] == runner.STEPS[-1]:
        runner.finish_run(args.run_id, "success")
        rep = report.save(args.run_id)
        print(json.dumps(rep, ensure_ascii=False, default=str) if args.json else report.render(rep))
    return 0


def known_flows() -> list[str]:
    """The modules in flows/ that define a flow's steps."""
    return sorted(p.stem for p in Path(__file__).parent.glob("*.py") if "\nSTEP_FUNCTIONS" in p.read_text(encoding="utf-8"))


def step_functions(flow: str) -> dict | None:
    """The flow's step functions, or None when no flow has that name."""
    if flow not in known_flows():
        return None
    return importlib.import_module(f"flows.{flow}").STEP_FUNCTIONS


def _run_with_retries(flow: str, step: str, run_id: str, fn, retries: int) -> None:
    for attempt in range(retries + 1):
        try:
            runner.run_step(flow, step, run_id, fn)
            return
        except TransientError as exc:
            if attempt == retries:
                raise
            delay = settings.retry_delay(attempt + 1)
            print(f"{flow} {run_id}: {step} failed ({exc}); retry {attempt + 1}/{retries} in {delay:.0f}s", file=sys.stderr)
            time.sleep(delay)


if __name__ == "__main__":
    sys.exit(main())
