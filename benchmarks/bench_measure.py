"""The runner's measurement of a target (issue 9: a 20,000-line target in under 2 s), beside a bare
`ruff check` of the same tree. The target is generated: modules of documented and undocumented
functions with branches, loops and a few lint and security findings, like application code.

Usage: python benchmarks/bench_measure.py [--lines 20000] [--runs 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="tdev-bench-measure-"))
    lines = generate(base / "target", args.lines)
    from lib.evolution import judge
    from lib.quality import measure

    ruff = measure.ruff_bin()
    measured, bare = [], []
    judge.measure_target(base, "target")  # warm the imports and the page cache
    for _ in range(args.runs):
        start = time.perf_counter()
        figures = judge.measure_target(base, "target")
        measured.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run([ruff, "check", "--no-cache", "--exit-zero", "--quiet", str(base / "target")],
                       capture_output=True, check=True)
        bare.append(time.perf_counter() - start)
    ratios = sorted(m / b for m, b in zip(measured, bare, strict=True))
    print(f"target: {figures['files']} files, {lines} lines ({figures['sloc']} source lines), "
          f"lint {figures['lint']}, security {figures['security']}, docstring {figures['docstring']}%")
    print(f"runner's measurement: median {statistics.median(measured):.2f}s "
          f"(min {min(measured):.2f}, max {max(measured):.2f}; target < 2 s)")
    print(f"bare ruff check:      median {statistics.median(bare):.3f}s")
    print(f"ratio measurement / ruff, pair by pair: median {statistics.median(ratios):.1f}x "
          f"(min {ratios[0]:.1f}, max {ratios[-1]:.1f})")


if __name__ == "__main__":
    main()
