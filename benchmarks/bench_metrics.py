"""Figures of issue 6: the metrics commands on a large SQLite store, each under 0.5 s.

Builds a store of 100,000 evolutions and 1,000,000 tasks over a year (benchmarks/seed_store.py:
executemany in one transaction), then times, as an operator runs them (a fresh Python
process each, wall clock, after one warm-up run):
  - python scripts/show_metrics.py --trend --days 7
  - python scripts/check_metrics.py --metrics-only   (the key-metrics part)
  - python scripts/export_metrics.py --format prometheus
and, inside one process, the store aggregates alone. GitHub is not configured (no network);
the security count comes from the store, as the security audit leaves it.

Usage:
    python benchmarks/bench_metrics.py [--evolutions 100000] [--runs 5] [--work DIR]
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
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import seed_store  # noqa: E402

BUDGET_S = 0.5
COMMANDS = {
    "show_metrics.py --trend --days 7": ["show_metrics.py", "--trend", "--days", "7"],
    "check_metrics.py (key metrics)": ["check_metrics.py", "--metrics-only"],
    "export_metrics.py --format prometheus": ["export_metrics.py", "--format", "prometheus"],
}


def time_command(args: list[str], env: dict, runs: int) -> tuple[list[float], list[float]]:
    """(wall clock, CPU user+system) of each run; CPU time is what other load on the machine cannot inflate."""
    walls, cpus = [], []
    for attempt in range(runs + 1):
        with tempfile.TemporaryFile() as errors:
            started = time.perf_counter()
            child = subprocess.Popen([sys.executable, str(ROOT / "scripts" / args[0]), *args[1:]], env=env,
                                     stdout=subprocess.DEVNULL, stderr=errors)
            _, status, usage = os.wait4(child.pid, 0)
            elapsed = time.perf_counter() - started
            code = os.waitstatus_to_exitcode(status)
            if code not in (0, 1, 2):
                errors.seek(0)
                raise SystemExit(f"{' '.join(args)} failed ({code}): {errors.read().decode().strip()}")
        if attempt:  # the first run warms the page cache
            walls.append(elapsed)
            cpus.append(usage.ru_utime + usage.ru_stime)
    return walls, cpus


def time_aggregates(history: Path, runs: int) -> list[float]:
    os.environ["TDEV_HISTORY_DIR"] = str(history)
    from lib.insight import metrics
    from lib.store.sqlite import SQLiteStore

    store = SQLiteStore.open(path=history / "state.db")
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        windows = metrics.day_windows(7)
        metrics.compute(store, [*windows, metrics.window_back("7d")], None)
        timings.append(time.perf_counter() - started)
    return timings


def report(label: str, walls: list[float], cpus: list[float] | None = None) -> None:
    cpu = f"{statistics.median(cpus):8.3f}" if cpus else f"{'':8}"
    print(f"{label:46} {statistics.median(walls):8.3f} {max(walls):8.3f} {cpu}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evolutions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", type=Path, help="Folder for the store (default: a temporary one).")
    parser.add_argument("--reuse", action="store_true", help="Use the store already in --work.")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    history = work / "history"
    started = time.perf_counter()
    reused = args.reuse and (history / "state.db").exists()
    if not reused:
        seed_store.build(history, args.evolutions)
    from lib.store.sqlite import SQLiteStore

    counts = SQLiteStore.open(path=history / "state.db").counts()
    print(f"store: {counts['evolutions']:,} evolutions, {counts['tasks']:,} tasks "
          f"({(history / 'state.db').stat().st_size / 2**20:.0f} MiB), "
          + ("reused" if reused else f"built in {time.perf_counter() - started:.1f} s"))
    SQLiteStore.open(path=history / "state.db").set_meta("security-findings", {"count": 0})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_TOKEN", "TDEV_", "EVOLUTION_"))}
    env.update(TDEV_HISTORY_DIR=str(history), TDEV_LOG_DIR=str(work / "logs"), EVOLUTION_TARGET=str(work / "none"))
    worst = 0.0
    print(f"seconds over {args.runs} runs (budget {BUDGET_S} s on the median wall clock)")
    print(f"{'command':46} {'median':>8} {'max':>8} {'cpu':>8}")
    for label, command in COMMANDS.items():
        walls, cpus = time_command(command, env, args.runs)
        worst = max(worst, statistics.median(walls))
        report(label, walls, cpus)
    report("(python start + imports: show_metrics --help)", *time_command(["show_metrics.py", "--help"], env,
                                                                          args.runs))
    report("store aggregates, 8 windows, in process", time_aggregates(history, args.runs))
    print("OK" if worst < BUDGET_S else f"OVER BUDGET: median {worst:.3f} s")
    return 0  # a figure, not a verdict: the run itself succeeded


if __name__ == "__main__":
    sys.exit(main())
