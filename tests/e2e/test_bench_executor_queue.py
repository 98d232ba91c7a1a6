"""Smoke test of benchmarks/bench_executor_queue.py at its smallest size (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_bench_executor_queue_runs_both_executors(tdev):
    env = {k: v for k, v in tdev.env.items() if k not in ("TDEV_HISTORY_DIR", "TDEV_CONFIG_DIR")}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_executor_queue.py"), "--evolutions",
                             "2", "--max-concurrent", "1"], env=env, cwd=tdev.base, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:]}
    assert rows["local"][-1] == "succeeded" and rows["stepfunctions"][-1] == "succeeded"
