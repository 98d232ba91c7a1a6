"""The evolution runner's own overhead per phase (issue 2: under 20 ms), on a store of
100,000 evolutions and 1,000,000 tasks. Agents answer instantly, so what is left is the
runner: boundary checks (stop request, cost limits), task and span records, artifacts, logs.

Usage: python benchmarks/bench_runner.py [--evolutions 100000] [--cycles 25]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

OUTPUTS = {
    "research": {"metrics": {"files": 1, "lint": 0}, "per_file": {}},
    "plan": {"files": [], "change_kind": "none", "skipped": []},
    "implement": {"changed_files": []},
    "evaluate": {"metrics": {"files": 1, "lint": 0}, "gates": [], "passed": True},
}


class InstantRuntime:
    """An agent that answers at once; counts the time spent inside it."""

    spent = 0.0

    def __init__(self, agent):
        self.agent = agent

    def invoke(self, payload, timeout):
        start = time.perf_counter()
        answer = {"status": "ok", "output": OUTPUTS[payload["phase"]], "cost_usd": 0.0, "tokens": 0, "error": None}
        InstantRuntime.spent += time.perf_counter() - start
        return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evolutions", type=int, default=100_000)
    parser.add_argument("--cycles", type=int, default=25)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tdev-bench-runner-"))
    os.environ.update(TDEV_HISTORY_DIR=str(work / "history"), TDEV_LOG_DIR=str(work / "logs"))
    (work / "limits").mkdir()
    import seed_store

    started = time.perf_counter()
    seed_store.build(work / "history", args.evolutions)
    print(f"seeded {args.evolutions:,} evolutions and {args.evolutions * 10:,} tasks "
          f"in {time.perf_counter() - started:.1f}s")
    repo = work / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "m.py").write_text('"""m."""\n')
    for command in (["init", "-q", "-b", "main"], ["add", "-A"],
                    ["-c", "user.name=b", "-c", "user.email=b@e", "commit", "-qm", "i"]):
        subprocess.run(["git", *command], cwd=repo, check=True)

    from lib import agents
    from lib.evolution import create
    from lib.evolution.runner import PHASES, Runner
    from lib.store import open_store

    agents.runtime = InstantRuntime
    store = open_store(create=True)
    record = create(store, (repo / "pkg").resolve(), "quality", args.cycles, dry_run=True)
    runner = Runner(store, record["id"])
    phase_time = 0.0
    original_phase, original_boundary = runner._run_phase, runner._boundary

    def timed(function):
        def wrapper(*a, **k):
            nonlocal phase_time
            start = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                phase_time += time.perf_counter() - start
        return wrapper

    runner._run_phase, runner._boundary = timed(original_phase), timed(original_boundary)
    total_start = time.perf_counter()
    status = runner.run()
    total = time.perf_counter() - total_start
    phases = args.cycles * len(PHASES)
    overhead = (phase_time - InstantRuntime.spent) / phases
    print(f"evolution {status}: {args.cycles} cycles, {phases} phases in {total:.2f}s "
          f"(incl. worktree add/remove)")
    print(f"runner overhead per phase: {overhead * 1000:.2f} ms (target < 20 ms)")


if __name__ == "__main__":
    main()
