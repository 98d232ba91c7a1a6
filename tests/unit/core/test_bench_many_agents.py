"""Smoke test of benchmarks/bench_many_agents.py at a tiny size (no timing assertion)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_the_benchmark_runs_at_a_tiny_size(tdev):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_many_agents.py"), "--agents", "6",
                           "--runs", "1"], capture_output=True, text=True, timeout=300, env=tdev.env)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["agents"] == 6 and figures["this"]["exit_codes"] and figures["this"]["median_s"] > 0
