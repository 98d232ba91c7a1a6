"""pre_evolution_check.py with a large agents.yaml (issue 16: 5,000 agents made it parse the file 11 times,
take 31 s and time out), this tree beside a baseline tree, runs interleaved so both share the machine's load.

Usage: python benchmarks/bench_many_agents.py [--agents 5000] [--runs 3] [--baseline /work/main]
Prints the median seconds and exit code of each tree, and one JSON line with the same figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHASES = {"research": "research-agent", "plan": "planner-agent", "implement": "refactor-agent",
          "evaluate": "evaluator-agent"}


def installation(base: Path, agents: int) -> tuple[dict, Path]:
    """Config with `agents` agents, an empty history, a one-file git target; the environment to run in."""
    shutil.copytree(ROOT / "config", base / "config")
    lines = ["agents:", *(f"  - {{name: {name}, phase: {phase}, runtime: local}}" for phase, name in PHASES.items())]
    lines += [f"  - {{name: extra-{n}, phase: implement, runtime: command, command: [/bin/true]}}"
              for n in range(max(agents - len(PHASES), 0))]
    (base / "config" / "agents.yaml").write_text("\n".join(lines) + "\n")
    settings = base / "config" / "settings.yaml"  # several implement agents are candidates (DESIGN §3)
    settings.write_text(re.sub(r"\n  candidates: \d+", "\n  candidates: 2", settings.read_text(), count=1))
    target = base / "repo" / "packages" / "agents"
    target.mkdir(parents=True)
    (target / "sample.py").write_text('"""Sample."""\n')
    for command in (["init", "-q"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@example.com", "commit",
                                                    "-qm", "initial"]):
        subprocess.run(["git", *command], cwd=base / "repo", check=True)
    env = {**os.environ, "TDEV_HISTORY_DIR": str(base / "history"), "TDEV_CONFIG_DIR": str(base / "config"),
           "TDEV_LOG_DIR": str(base / "logs"), "TDEV_BACKUP_DIR": str(base / "backups"), "HOME": str(base)}
    return env, target


def timed(tree: Path, env: dict, target: Path) -> tuple[float, int]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(tree / "scripts" / "pre_evolution_check.py"), "--target",
                           str(target)], env=env, cwd=tree, capture_output=True, text=True)
    return time.monotonic() - started, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout to time the same way")
    args = parser.parse_args()
    trees = {"this": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    with tempfile.TemporaryDirectory(prefix="bench-agents-") as scratch:
        env, target = installation(Path(scratch), args.agents)
        seconds: dict[str, list[float]] = {name: [] for name in trees}
        codes: dict[str, set[int]] = {name: set() for name in trees}
        for _ in range(args.runs):
            for name, tree in trees.items():
                took, code = timed(tree, env, target)
                seconds[name].append(took)
                codes[name].add(code)
    figures = {name: {"median_s": round(statistics.median(values), 2), "exit_codes": sorted(codes[name])}
               for name, values in seconds.items()}
    for name, figure in figures.items():
        print(f"{name:9} {args.agents} agents: median {figure['median_s']} s over {args.runs} run(s), "
              f"exit {figure['exit_codes']}")
    print(json.dumps({"agents": args.agents, "runs": args.runs, **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
