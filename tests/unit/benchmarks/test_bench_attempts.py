"""Smoke test of benchmarks/bench_attempts.py at a tiny size: it runs and prints its figures (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, git


def test_bench_attempts_runs_at_a_tiny_size(tmp_path: Path):
    real = tmp_path / "project"
    (real / "pkg").mkdir(parents=True)
    (real / "pkg" / "__init__.py").write_text("def one():\n    return 1\n")
    (real / "test").mkdir()
    (real / "test" / "test_one.py").write_text("from pkg import one\n\n\ndef test_one():\n    assert one() == 1\n")
    git(real, "init", "-q", "-b", "main")
    git(real, "add", "-A")
    git(real, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "initial")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_attempts.py"), "--repeat", "1",
                             "--attempts", "2", "--real", str(real)], capture_output=True, text=True, timeout=600,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "evolution passing at attempt 1 (baseline): median" in result.stdout
    assert "runner overhead per refused attempt" in result.stdout
    assert "test command `" in result.stdout and " test` (found in" in result.stdout
    assert "1 passed, 0 failed" in result.stdout and "cached baseline lookup" in result.stdout
