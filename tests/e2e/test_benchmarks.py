"""Benchmarks are part of the product: each one runs green at a tiny size, as an operator runs it.

No timing is asserted (the machine is shared); a run must finish, exit 0 and print its figures.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TABULATE = Path("/work/real/tabulate")

#: every benchmark at its smallest useful size, and a line its report must hold
SMOKE = {
    "bench_agent_status.py": (["--agents", "2", "--rounds", "1"], "concurrent"),
    "bench_archive_logs.py": (["--megabytes", "2", "--files", "2"], "peak"),
    "bench_backup.py": (["--size-mb", "2", "--rounds", "1"], "backup throughput / tar --zstd -cf throughput"),
    "bench_candidates.py": (["--candidates", "2", "--wait", "0", "--repeat", "1"], "ratio candidates 2 / candidates 1"),
    "bench_health_full.py": (["--runs", "1"], "median overhead over the slowest check"),
    "bench_history.py": (["--evolutions", "200", "--tasks-per-evolution", "2", "--runs", "1"], "--since yesterday"),
    "bench_mcp_test.py": (["--runs", "1"], "ratio all / slowest single"),
    "bench_measure.py": (["--lines", "300", "--runs", "1"], "measurement, cached"),
    "bench_metrics.py": (["--evolutions", "200", "--runs", "1"], "median"),
    "bench_runner.py": (["--evolutions", "200", "--cycles", "2"], "median"),
    "bench_startup.py": (["--runs", "1", "--scripts", "health_check.py", "show_evolution_history.py"],
                         "worst wall ratio"),
    "seed_store.py": (["{tmp}/history", "--evolutions", "50"], "state.db"),
}


def _run(name: str, argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TDEV_", "AWS_", "EVOLUTION_"))}
    env["TDEV_HISTORY_DIR"] = str(tmp_path / "bench-history")  # nothing of the real installation is touched
    return subprocess.run([sys.executable, f"benchmarks/{name}", *(a.format(tmp=tmp_path) for a in argv)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)


def test_every_benchmark_has_a_smoke_run():
    """Here, or in a test module of its own beside the code it measures (tests/**/test_<benchmark>.py)."""
    own = {path.name.removeprefix("test_") for path in (ROOT / "tests").rglob("test_bench_*.py")}
    benchmarks = {path.name for path in (ROOT / "benchmarks").glob("*.py")}
    assert benchmarks - set(SMOKE) - own == set()
    assert set(SMOKE) <= benchmarks


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_the_benchmark_runs_green_at_a_tiny_size(name, tmp_path):
    argv, expected = SMOKE[name]
    result = _run(name, argv, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert expected in result.stdout


@pytest.mark.skipif(not TABULATE.is_dir(), reason="needs the real tabulate checkout")
def test_the_measurement_benchmark_measures_a_real_repository(tmp_path):
    result = _run("bench_measure.py", ["--real", str(TABULATE / "tabulate"), "--runs", "1"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "3 files" in result.stdout and "measurement, cold" in result.stdout


def test_the_measurement_benchmark_refuses_a_missing_folder(tmp_path):
    result = _run("bench_measure.py", ["--real", str(tmp_path / "absent")], tmp_path)
    assert result.returncode == 2 and "not a folder" in result.stderr
