"""What candidates cost in wall time (DESIGN §5 Candidates): N implement changes asked for at once.

An evolution whose `command` implement agent waits a fixed time before it answers (a model call's latency:
waiting on a pipe, no CPU), run with evolution.candidates 1 (the baseline, measured in the same run) and N.
The candidates run at once, so N of them should cost about one agent call's wall time plus the runner's own
work per candidate (a worktree each, the patch rules, the judgement), not N calls.

Printed: medians over --repeat runs, side by side.

Usage: python benchmarks/bench_candidates.py [--candidates 3] [--wait 1.0] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_attempts import make_repo, one_evolution, register_implement  # noqa: E402 - the same evolution set-up

#: Waits on a pipe that never gets data (CPU-free) for `wait` seconds, then adds one line naming its candidate.
AGENT = '''import json, os, select, sys
given = json.loads(sys.stdin.read())
quiet, _ = os.pipe()
select.select([quiet], [], [], {wait})
number = given.get("candidate", 1)
patch = ("diff --git a/pkg/m.py b/pkg/m.py\\n--- a/pkg/m.py\\n+++ b/pkg/m.py\\n@@ -1 +1,2 @@\\n "
         + '"""m."""' + f"\\n+V = {{number}}\\n")
print(json.dumps({{"status": "ok", "output": {{"patch": patch}}, "cost_usd": 0, "tokens": 0}}))
'''


def register(work: Path, wait: float) -> None:
    """agents.yaml: the local agents, and the waiting command agent for implement (asked once per candidate)."""
    script = work / "implement.py"
    script.write_text(AGENT.format(wait=wait))
    register_implement(work, script)


def set_candidates(work: Path, count: int) -> None:
    settings = work / "config" / "settings.yaml"
    settings.write_text(re.sub(r"\n  candidates: \d+", f"\n  candidates: {count}", settings.read_text(), count=1))
    from lib import config

    config.settings.cache_clear()


def bench(work: Path, count: int, wait: float, repeat: int) -> None:
    repo = make_repo(work)
    register(work, wait)
    set_candidates(work, 1)
    one_evolution(repo, 1)  # warm-up: imports, the first git worktree
    single, several = [], []
    for _ in range(repeat):
        for candidates, times in ((1, single), (count, several)):
            set_candidates(work, candidates)
            seconds, record = one_evolution(repo, 1)
            assert record["status"] == "succeeded", record
            times.append(seconds)
    one, many = statistics.median(single), statistics.median(several)
    print(f"implement agent waits {wait:g} s per call; medians over {repeat} runs")
    print(f"evolution, candidates 1 (baseline): median {one * 1000:.0f} ms")
    print(f"evolution, candidates {count}: median {many * 1000:.0f} ms")
    print(f"ratio candidates {count} / candidates 1: {many / one:.2f} (asked one after another: about "
          f"{(one + (count - 1) * wait) / one:.2f})")
    print(f"extra wall time per added candidate: {(many - one) / (count - 1) * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--wait", type=float, default=1.0, help="seconds the implement agent waits per call")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.candidates < 2 or args.wait < 0 or args.repeat < 1:
        parser.error("--candidates must be 2 or more, --wait 0 or more, --repeat 1 or more")
    work = Path(tempfile.mkdtemp(prefix="tdev-bench-candidates-"))
    try:
        shutil.copytree(ROOT / "config", work / "config")
        os.environ.update(TDEV_HISTORY_DIR=str(work / "history"), TDEV_LOG_DIR=str(work / "logs"),
                          TDEV_CONFIG_DIR=str(work / "config"), EVOLUTION_TEST_COMMAND="none")
        bench(work, args.candidates, args.wait, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
