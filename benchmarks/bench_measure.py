"""The runner's measurement of a target, cold (an empty cache) and cached (every file unchanged), beside a
bare `ruff check` of the same tree (issue 17: cold at most 5x ruff on 20,000 lines; a real 3,000-line
library at most 0.3 s cold and 0.05 s cached). The target is generated: modules of documented and
undocumented functions with branches, loops and a few lint and security findings, like application
code; or, with --real, any real folder.

Usage: python benchmarks/bench_measure.py [--lines 20000] [--runs 5] [--keep DIR] [--real PATH]
"""

from __future__ import annotations

import argparse
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

FUNCTION = '''

def handle_{n}(items, limit={n}):
    """Sum the items under the limit, skipping None."""
    total = 0
    for item in items:
        if item is None:
            continue
        if item > limit:
            total += limit
        elif item < 0:
            total -= item
        else:
            total += item
    return total


def parse_{n}(text):
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            values.append(int(part))
        except ValueError:
            values.append(len(part))
    return values
'''


def generate(folder: Path, lines: int) -> int:
    """Write modules until the tree holds `lines` lines; returns the line count."""
    folder.mkdir(parents=True, exist_ok=True)
    written, module = 0, 0
    while written < lines:
        body = [f'"""Generated module {module}."""\n\nimport os\nimport subprocess\n']
        body += [FUNCTION.format(n=n) for n in range(8)]
        body.append("\n\ndef run(command):\n    return subprocess.call(command, shell=True)\n")
        text = "".join(body)
        (folder / f"module_{module:03d}.py").write_text(text)
        written += text.count("\n")
        module += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="Generate the target here and keep it.")
    parser.add_argument("--real", type=Path, help="Measure this real folder (a package, a repository) instead.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tdev-bench-measure-"))
    if args.real:
        target = args.real.resolve()
        if not target.is_dir():
            parser.error(f"--real {args.real}: not a folder")
    else:
        target = (args.keep or work) / "target"
        generate(target, args.lines)
    os.environ["TDEV_HISTORY_DIR"] = str(work / "history")  # the measurement cache lives there
    from lib.quality import measure

    ruff = measure.ruff_bin()
    measure.measure(target, cache=False)  # warm the imports and the page cache
    cold, cached, bare = [], [], []
    for run in range(args.runs):
        os.environ["TDEV_HISTORY_DIR"] = str(work / f"history-{run}")  # an empty cache: measured from scratch
        start = time.perf_counter()
        figures = measure.measure(target)
        cold.append(time.perf_counter() - start)
        start = time.perf_counter()
        measure.measure(target)  # every file as it was: read back from the cache
        cached.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run([ruff, "check", "--no-cache", "--exit-zero", "--quiet", str(target)], capture_output=True,
                       check=True)
        bare.append(time.perf_counter() - start)
    lines = sum(path.read_bytes().count(b"\n") for path in measure.python_files(target))
    ratios = sorted(c / b for c, b in zip(cold, bare, strict=True))
    print(f"target: {target} ({figures['files']} files, {lines} lines, {figures['sloc']} source lines), "
          f"lint {figures['lint']}, security {figures['security']}, docstring {figures['docstring']}%, "
          f"maintainability {figures['maintainability']}")
    print(f"measurement, cold:   median {statistics.median(cold):.3f}s (min {min(cold):.3f}, max {max(cold):.3f})")
    print(f"measurement, cached: median {statistics.median(cached):.4f}s "
          f"(min {min(cached):.4f}, max {max(cached):.4f})")
    print(f"bare ruff check:     median {statistics.median(bare):.3f}s")
    print(f"ratio cold measurement / ruff, pair by pair: median {statistics.median(ratios):.1f}x "
          f"(min {ratios[0]:.1f}, max {ratios[-1]:.1f})")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
