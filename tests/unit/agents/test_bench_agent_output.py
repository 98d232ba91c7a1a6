"""Smoke test of benchmarks/bench_agent_output.py at a tiny size: it runs and reports both readings."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_the_output_benchmark_runs_at_a_tiny_size(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_agent_output.py"), "--mb", "0.2",
                             "--repeat", "1"], capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert set(rows) == {"baseline", "bounded"}
    assert all(row.endswith("parsed 200,000 characters") for row in rows.values())
