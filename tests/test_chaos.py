"""The chaos command at a small size: faults of every kind on every stand-in, a SIGKILL in
each write step, and the targets must end holding exactly what a clean run leaves."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_chaos_ends_with_the_clean_worlds_records(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HUB_STORE_URL", None)
    proc = subprocess.run([sys.executable, "-m", "sandbox", "chaos", "--dir", str(tmp_path), "--accounts", "20",
                           "--rate", "0.3", "--seed", "7"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=540)
    out = proc.stdout
    assert proc.returncode == 0, out[-6000:] + proc.stderr[-3000:]
    assert "verdict: exactly once" in out
    assert out.count("killed after") == 6, out          # every flow's write step was killed once (six flows)
    served = next(line for line in out.splitlines() if line.startswith("faults served"))
    for kind in ("lost", "truncated", "malformed", "500", "429"):
        assert f"{kind} " in served, served
    assert "DIFFERENT" not in out and "held twice in the chaos world" not in out
    # the worlds stay for inspection, with the demo's schema
    assert (tmp_path / "chaos" / "sandbox" / "crm.db").exists() and (tmp_path / "chaos" / "sandbox" / "u8.db").exists()
