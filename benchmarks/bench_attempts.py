"""What a repair attempt costs (issue 15, DESIGN §5), and what the tests' baseline run costs.

1. Runner overhead per attempt: an evolution whose command implement agent is refused K-1 times
   (a patch that breaks the syntax) and passes at attempt K, against the baseline measured in the
   same run: the same evolution passing at attempt 1. Per attempt = (time(K) - time(1)) / (K - 1):
   the implement call (a real `command` agent process), taking the change under the patch rules,
   the judgement, the reset and the feedback.
2. With --real PATH (a git repository, e.g. /work/real/tabulate): the test command the runner finds
   for the package, the cost of its baseline run on the base commit (uncached: once per base), and
   of a cached baseline lookup (every later cycle or evolution on the same base).

Printed: medians over --repeat runs, side by side with the baseline.

Usage: python benchmarks/bench_attempts.py [--attempts 3] [--repeat 5] [--real /work/real/tabulate]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AGENT = '''import json, sys
given = json.loads(sys.stdin.read())
good = "diff --git a/pkg/m.py b/pkg/m.py\\n--- a/pkg/m.py\\n+++ b/pkg/m.py\\n@@ -1 +1,2 @@\\n " + \\
       '"""m."""' + "\\n+V = 1\\n"
bad = good.replace("+V = 1", "+def broken(:")
patch = good if given["attempt"] >= {passing} else bad
print(json.dumps({{"status": "ok", "output": {{"patch": patch}}, "cost_usd": 0, "tokens": 0}}))
'''


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(work: Path) -> Path:
    repo = work / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "m.py").write_text('"""m."""\n')
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=b", "-c", "user.email=b@e", "commit", "-qm", "initial")
    return repo


def register(work: Path, passing: int) -> None:
    """agents.yaml: the local agents, and a command implement agent passing at attempt `passing`."""
    script = work / f"implement_{passing}.py"
    script.write_text(AGENT.format(passing=passing))
    register_implement(work, script)


def register_implement(work: Path, script: Path) -> None:
    """agents.yaml: the local agents for research, plan and evaluate; the Python script for implement."""
    lines = ["agents:"]
    for phase, name in (("research", "research-agent"), ("plan", "planner-agent"),
                        ("implement", "refactor-agent"), ("evaluate", "evaluator-agent")):
        entry = {"name": name, "phase": phase, "runtime": "local"}
        if phase == "implement":
            entry.update(runtime="command", command=[sys.executable, str(script)])
        lines.append(f"  - {json.dumps(entry)}")
    (work / "config" / "agents.yaml").write_text("\n".join(lines) + "\n")


def one_evolution(repo: Path, attempts: int) -> tuple[float, dict]:
    """Seconds for one dry-run evolution with `attempts` allowed, and its record."""
    from lib.evolution.lifecycle import create
    from lib.evolution.runner import Runner
    from lib.store import open_store

    store = open_store(create=True)
    try:
        record = create(store, (repo / "pkg").resolve(), "quality", 1, dry_run=True, attempts=attempts)
        start = time.perf_counter()
        Runner(store, record["id"]).run()
        seconds = time.perf_counter() - start
        return seconds, store.get_evolution(record["id"])
    finally:
        store.close()


def bench_attempts(work: Path, attempts: int, repeat: int) -> None:
    repo = make_repo(work)
    single, several = [], []
    register(work, 1)
    one_evolution(repo, attempts)  # warm-up: imports, the first git worktree
    for _ in range(repeat):
        for passing, times in ((1, single), (attempts, several)):
            register(work, passing)
            seconds, record = one_evolution(repo, attempts)
            assert record["status"] == "succeeded" and record["attempts"] == passing, record
            times.append(seconds)
    one, many = statistics.median(single), statistics.median(several)
    print(f"evolution passing at attempt 1 (baseline): median {one * 1000:.0f} ms over {repeat} runs")
    print(f"evolution passing at attempt {attempts}: median {many * 1000:.0f} ms")
    print(f"runner overhead per refused attempt (command agent call included): "
          f"{(many - one) / (attempts - 1) * 1000:.0f} ms")


def bench_baseline(work: Path, real: Path, repeat: int) -> None:
    from lib.evolution import testing

    clone = work / "real"
    git(work, "clone", "-q", str(real), str(clone))
    package = next(p.name for p in sorted(clone.iterdir()) if (p / "__init__.py").is_file())
    start = time.perf_counter()
    plan = testing.plan(clone, package)
    found = time.perf_counter() - start
    print(f"{real}: target {package}, test command `{plan.shown}` (found in {found * 1000:.1f} ms)")
    sha = git(clone, "rev-parse", "HEAD")
    runs, lookups, result = [], [], {}
    for round_number in range(repeat):
        cache = Path(os.environ["TDEV_HISTORY_DIR"]) / "test_baselines"
        shutil.rmtree(cache, ignore_errors=True)
        start = time.perf_counter()
        result = testing.baseline(plan, clone, sha, work / f"junit-{round_number}.xml")
        runs.append(time.perf_counter() - start)
        start = time.perf_counter()
        testing.baseline(plan, clone, sha, work / "junit-cached.xml")
        lookups.append(time.perf_counter() - start)
    print(f"baseline run (uncached, once per base commit): median {statistics.median(runs):.2f} s over {repeat} "
          f"runs; {len(result['passed'])} passed, {len(result['failed'])} failed")
    print(f"cached baseline lookup (every later cycle on that base): median "
          f"{statistics.median(lookups) * 1000:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attempts", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--real", type=Path, help="a git repository whose package's tests to run")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tdev-bench-attempts-"))
    try:
        shutil.copytree(ROOT / "config", work / "config")
        os.environ.update(TDEV_HISTORY_DIR=str(work / "history"), TDEV_LOG_DIR=str(work / "logs"),
                          TDEV_CONFIG_DIR=str(work / "config"), EVOLUTION_TEST_COMMAND="none")
        bench_attempts(work, max(2, args.attempts), args.repeat)
        if args.real:
            os.environ.pop("EVOLUTION_TEST_COMMAND")
            bench_baseline(work, args.real.resolve(), args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
