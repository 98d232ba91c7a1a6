"""Peak memory and time of reading one command agent's reply (issue 16, item 5: a 50 MB reply made the
runner's peak memory 231 MB). Compared in the same run: the baseline, the former reading (everything
buffered with communicate(), decoded, parsed), and CommandRuntime.invoke, which reads at most
evolution.max_output_bytes (default 5,000,000) and refuses the rest as bad-output.

Each measurement is a fresh interpreter (its peak RSS is the figure), so that one does not inherit
the other's heap. Printed: medians over --repeat runs.

Usage: python benchmarks/bench_agent_output.py [--mb 50] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
METHODS = ("baseline", "bounded")


def agent_argv(megabytes: float) -> list[str]:
    """An agent that answers a valid research reply whose summary is `megabytes` MB."""
    size = int(megabytes * 1_000_000)
    code = ("import sys; sys.stdin.read(); sys.stdout.write('{\"status\": \"ok\", \"output\": {\"summary\": \"'); "
            f"[sys.stdout.write('x' * 1_000_000) for _ in range({size // 1_000_000})]; "
            f"sys.stdout.write('x' * {size % 1_000_000}); sys.stdout.write('\"}}}}')")
    return [sys.executable, "-c", code]


def read_once(method: str, megabytes: float) -> dict:
    """One read of the reply in this process: {seconds, peak_mb, outcome}."""
    argv = agent_argv(megabytes)
    payload = {"evolution_id": "evo-bench", "task_id": "task-bench", "phase": "research"}
    if method == "bounded":  # loaded before the clock starts, as a running runner has them
        import psutil  # noqa: F401

        import lib.evolution.contract  # noqa: F401
        from lib import config
        from lib.agents import AgentError
        from lib.agents.command import CommandRuntime

        config.settings()
    started = time.perf_counter()
    if method == "baseline":
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        stdout, _ = process.communicate(json.dumps(payload))
        outcome = f"parsed {len(json.loads(stdout)['output']['summary']):,} characters"
    else:
        try:
            reply = CommandRuntime({"name": "bench", "runtime": "command", "command": argv}).invoke(payload, 600)
            outcome = f"parsed {len(reply['output']['summary']):,} characters"
        except AgentError as refused:
            outcome = refused.message.split(": ")[0] + ": over the bound"
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "outcome": outcome}


def measure(method: str, megabytes: float, home: Path) -> dict:
    """read_once in a fresh interpreter."""
    env = {**os.environ, "TDEV_HISTORY_DIR": str(home / "history"), "TDEV_LOG_DIR": str(home / "logs")}
    result = subprocess.run([sys.executable, __file__, "--one", method, "--mb", str(megabytes)], env=env,
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--one", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(read_once(args.one, args.mb)))
        return
    home = Path(tempfile.mkdtemp(prefix="tdev-bench-output-"))
    runs = {method: [measure(method, args.mb, home) for _ in range(args.repeat)] for method in METHODS}
    print(f"one agent reply of {args.mb:g} MB, median of {args.repeat} run(s):")
    print(f"{'':10} {'peak RSS MB':>12} {'seconds':>9}  outcome")
    for method, results in runs.items():
        print(f"{method:10} {statistics.median(r['peak_mb'] for r in results):12.1f} "
              f"{statistics.median(r['seconds'] for r in results):9.3f}  {results[0]['outcome']}")


if __name__ == "__main__":
    main()
