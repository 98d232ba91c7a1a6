"""The evolution runner's own overhead (issue 9: under 30 ms per phase beyond the agent's own
time), on a store of 100,000 evolutions and 1,000,000 tasks. Agents answer at once with the
minimal §5 outputs and implement returns a real one-line patch, so every cycle runs all four
phases, the contract checks, the patch rules and `git apply`, the runner's own measurement before
and after, the gates and a commit. Printed: the phase machinery per phase, and the runner's
measurement and judgement per cycle.

Usage: python benchmarks/bench_runner.py [--evolutions 100000] [--cycles 25]
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


def one_line_patch(entry: dict, cycle: int) -> str:
    """A unified diff that appends `V<cycle> = <cycle>` to the planned file."""
    lines = entry["content"].splitlines()
    body = "".join(f" {line}\n" for line in lines)
    return (f"diff --git a/{entry['path']} b/{entry['path']}\n--- a/{entry['path']}\n+++ b/{entry['path']}\n"
            f"@@ -1,{len(lines)} +1,{len(lines) + 1} @@\n{body}+V{cycle} = {cycle}\n")


class InstantRuntime:
    """An agent that answers at once with the minimal §5 output; counts the time spent inside it."""

    spent = 0.0

    def __init__(self, agent):
        self.agent = agent

    def invoke(self, payload, timeout):
        start = time.perf_counter()
        output = {
            "research": lambda: {"summary": "nothing to report"},
            "plan": lambda: {"files": [f"{payload['target']}/m.py"]},
            "implement": lambda: {"patch": one_line_patch(payload["files"][0], payload["cycle"])},
            "evaluate": lambda: {"verdict": "pass"},
        }[payload["phase"]]()
        answer = {"status": "ok", "output": output, "cost_usd": 0.0, "tokens": 0, "error": None}
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
    from lib.config import PHASES
    from lib.evolution import judge, publish
    from lib.evolution.lifecycle import create
    from lib.evolution.runner import Runner
    from lib.store import open_store

    agents.runtime = InstantRuntime
    store = open_store(create=True)
    record = create(store, (repo / "pkg").resolve(), "quality", args.cycles, dry_run=True)
    runner = Runner(store, record["id"])
    spent: dict[str, list[float]] = {"phase": [], "measure": [], "judge": [], "commit": []}

    def timed(kind, function):
        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                spent[kind].append(time.perf_counter() - start)
        return wrapper

    runner._phase = timed("phase", runner._phase)
    judge.measure_target = timed("measure", judge.measure_target)
    judge.judge = timed("judge", judge.judge)
    publish.commit = timed("commit", publish.commit)
    total_start = time.perf_counter()
    status = runner.run()
    total = time.perf_counter() - total_start
    phases = args.cycles * len(PHASES)
    assert len(spent["phase"]) == phases, f"{len(spent['phase'])} phases ran, expected {phases} ({status})"
    overhead = (sum(spent["phase"]) - InstantRuntime.spent) / phases
    print(f"evolution {status}: {args.cycles} cycles, {phases} phases in {total:.2f}s (incl. worktree add/remove)")
    print(f"phase machinery per phase (input, contract check, patch rules and git apply, task, span, artifact): "
          f"{overhead * 1000:.2f} ms (target < 30 ms)")
    print(f"runner's measurement per call: median {statistics.median(spent['measure']) * 1000:.0f} ms; "
          f"judge (measure after, gates, tests) per cycle: median {statistics.median(spent['judge']) * 1000:.0f} ms; "
          f"commit per cycle: median {statistics.median(spent['commit']) * 1000:.0f} ms")
    per_cycle = (total - 0) / args.cycles
    print(f"whole cycle, all runner work included: {per_cycle * 1000:.0f} ms = {per_cycle / len(PHASES) * 1000:.0f} ms "
          f"per phase")


if __name__ == "__main__":
    main()
