"""Start-up figure of issue 17: every script's `--help` against `python -c "import click"`, the floor
any click script pays (goal: at most 1.5x, paired median).

Each round runs the baseline and the script's --help in turn, so a drift in the machine's speed
moves both; the ratio is taken pair by pair and its median reported per script, worst first.
CPU time (user + system of the finished child) is reported beside wall time: on a shared machine
it is the steadier of the two.

Usage: python benchmarks/bench_startup.py [--runs 7] [--scripts run_evolution.py ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = [sys.executable, "-c", "import click"]


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one run of argv, which must succeed."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"{' '.join(argv)} exited {process.returncode}: "
                             f"{errors.read().decode(errors='replace').strip()[-300:]}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--scripts", nargs="*", help="Only these scripts (default: every one in scripts/).")
    args = parser.parse_args()
    scripts = args.scripts or sorted(p.name for p in (ROOT / "scripts").glob("*.py") if not p.name.startswith("_"))
    timed(BASELINE)  # warm the page cache
    rows, base_walls = [], []
    for script in scripts:
        wall_ratios, cpu_ratios, walls = [], [], []
        for _ in range(args.runs):
            base_wall, base_cpu = timed(BASELINE)
            wall, cpu = timed([sys.executable, f"scripts/{script}", "--help"])
            wall_ratios.append(wall / base_wall)
            cpu_ratios.append(cpu / base_cpu if base_cpu else float("nan"))
            walls.append(wall)
            base_walls.append(base_wall)
        rows.append((statistics.median(wall_ratios), statistics.median(cpu_ratios), statistics.median(walls),
                     script))
    print(f"baseline python -c 'import click': median wall {statistics.median(base_walls) * 1000:.0f} ms")
    print(f"{'SCRIPT':32} {'WALL ms':>8} {'WALL x':>7} {'CPU x':>7}")
    for wall_ratio, cpu_ratio, wall, script in sorted(rows, reverse=True):
        print(f"{script:32} {wall * 1000:8.0f} {wall_ratio:7.2f} {cpu_ratio:7.2f}")
    print(f"worst wall ratio {max(r[0] for r in rows):.2f}x, median over scripts "
          f"{statistics.median(r[0] for r in rows):.2f}x (goal: every script at most 1.5x)")


if __name__ == "__main__":
    main()
