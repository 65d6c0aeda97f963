"""Profile one step of a flow: seed the sandbox, run the steps before it, then run the step
under cProfile and print its seconds and the functions it spent them in.

    .venv/bin/python bench/profile_step.py --accounts 20000 --step load

Where the customer_master load step goes (bench/README.md) was read off this command.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--flow", default="customer_master")
    p.add_argument("--step", default="load")
    p.add_argument("--accounts", type=int, default=20_000)
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args()
    out = Path(tempfile.mkdtemp(prefix="hub-profile-"))
    os.environ.update({"HUB_VAR_DIR": str(out / "var"), "HUB_STORE_URL": f"sqlite:///{out / 'hub.db'}"})

    import importlib

    from hub import runner
    from sandbox.harness import Sandbox

    functions = importlib.import_module(f"flows.{args.flow}").STEP_FUNCTIONS
    before = runner.STEPS[:runner.STEPS.index(args.step)]
    with Sandbox(out / "sandbox", accounts=args.accounts).seed() as sb:
        os.environ.update(sb.connections())
        for step in before:
            start = time.perf_counter()
            runner.run_step(args.flow, step, "profile", functions[step])
            print(f"{step}: {time.perf_counter() - start:.2f} s")
        profile = cProfile.Profile()
        start = time.perf_counter()
        profile.enable()
        runner.run_step(args.flow, args.step, "profile", functions[args.step])
        profile.disable()
        print(f"{args.step}: {time.perf_counter() - start:.2f} s (under cProfile)")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
