"""What an agent sees of a real package (issue 15 item 3): the time to build the §5 `files` and `map`
for a phase, and how many target files are shown by content, by the map, or not at all, beside the
former input (target files in alphabetical order until the budget, the rest as bare paths) and the
runner's own measurement of the target (research ranks by the same measurement), in the same run.

Usage: python benchmarks/bench_context.py [--real /work/real/tabulate] [--runs 5] [--budget 200000]
       [--focus docs] [--no-self]
--real: a repository whose top-level packages are the targets; this repository's lib/ is measured
too unless --no-self.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def alphabetical(root: Path, names: list[str], budget: int) -> list[dict]:
    """The input before issue 15: contents in the given (alphabetical) order while they fit, every
    other file as a path with content null and no outline."""
    entries, used = [], 0
    for name in names:
        data = (root / name).read_bytes()
        fits = used + len(data) <= budget
        used += len(data) if fits else 0
        entries.append({"path": name, "content": data.decode("utf-8", "replace") if fits else None})
    return entries


def targets(real: Path | None, with_self: bool) -> list[tuple[Path, str]]:
    found = []
    if real:
        found += [(real, folder.name) for folder in sorted(real.iterdir())
                  if (folder / "__init__.py").is_file() and not folder.name.startswith(".")]
    if with_self:
        found.append((ROOT, "lib"))
    return found


def timed(runs: int, work) -> tuple[float, object]:
    seconds, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = work()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def bench(root: Path, target: str, runs: int, budget: int, focus: str) -> list[str]:
    from lib.evolution import context, judge

    names = context._target_files(root, target)
    planned = context._ranked(root, target, focus, names)[:1]
    lines = [f"{root.name}/{target}: {len(names)} files, {sum((root / n).stat().st_size for n in names)} bytes; "
             f"budget {budget} bytes; implement plans {planned}"]
    before_s, before = timed(runs, lambda: alphabetical(root, names, budget))
    shown = sum(1 for entry in before if entry["content"] is not None)
    lines.append(f"  before (alphabetical):     median {before_s * 1000:8.1f} ms; content {shown:3d}, "
                 f"map   0, invisible {len(names) - shown:3d}")

    measure_s, _ = timed(runs, lambda: judge.measure_target(root, target))
    lines.append(f"  the runner's own measurement of the target (measure before): median {measure_s * 1000:8.1f} ms")

    def cold(phase: str, given: list[str]):
        context._ranking_cache.clear()  # research measures and parses the target; later phases read the caches
        context._outline_cache.clear()
        return context.build(root, target, phase, focus, given, budget)

    for label, work in (("research (cold)", lambda: cold("research", names)),
                        ("plan (cached)", lambda: context.build(root, target, "plan", focus, names, budget)),
                        ("implement", lambda: context.build(root, target, "implement", focus, planned, budget))):
        seconds, view = timed(runs, work)
        content = {e["path"] for e in view["files"] if e["content"] is not None}
        mapped = {e["path"] for e in view["map"]}
        invisible = len(set(names) - content - mapped)
        lines.append(f"  after  {label:<19}: median {seconds * 1000:8.1f} ms; content {len(content):3d}, "
                     f"map {len(mapped):3d}, invisible {invisible:3d}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--real", type=Path, help="A repository (e.g. /work/real/tabulate).")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--budget", type=int, default=200_000)
    parser.add_argument("--focus", default="docs")
    parser.add_argument("--no-self", action="store_true", help="Leave out this repository's lib/.")
    args = parser.parse_args()
    for root, target in targets(args.real.resolve() if args.real else None, not args.no_self):
        print("\n".join(bench(root, target, args.runs, args.budget, args.focus)))


if __name__ == "__main__":
    main()
