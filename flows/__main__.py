"""``python -m flows run <flow> [--step S] --run-id R``: run a flow's steps outside Airflow.

For operators retrying one step by hand and for tests that kill a step mid-way; the
scheduled path is the Airflow DAG, which calls the same step runner.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from hub import report, runner


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m flows")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run one step, or all steps in order")
    r.add_argument("flow")
    r.add_argument("--step", action="append", help="a step name; repeat for several (default: all)")
    r.add_argument("--run-id", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    functions = importlib.import_module(f"flows.{args.flow}").STEP_FUNCTIONS
    steps = args.step or list(runner.STEPS)
    try:
        for step in steps:
            runner.run_step(args.flow, step, args.run_id, functions[step])
    except Exception as exc:  # noqa: BLE001 - reported in the run log, exit non-zero
        runner.finish_run(args.run_id, "failed", exc)
        print(f"{args.flow} {args.run_id}: failed at {step}: {exc}", file=sys.stderr)
        return 1
    if steps[-1] == runner.STEPS[-1]:
        runner.finish_run(args.run_id, "success")
        print(report.render(report.save(args.run_id)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
