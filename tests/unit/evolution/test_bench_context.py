"""Smoke test of benchmarks/bench_context.py at a tiny size (no timing assertions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_context.py"


def test_bench_context_reports_every_file_shown_after(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text('"""Tiny."""\n')
    for index in range(6):
        (package / f"mod{index}.py").write_text(f"def f{index}(x):\n    return x\n" * 10)
    result = subprocess.run([sys.executable, str(BENCH), "--real", str(tmp_path), "--runs", "1", "--budget", "400",
                             "--no-self"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{tmp_path.name}/pkg: 7 files")
    assert "before (alphabetical)" in lines[1] and "invisible   " in lines[1]
    after = [line for line in lines if "after" in line]
    assert len(after) == 3 and all(line.endswith("invisible   0") for line in after)
