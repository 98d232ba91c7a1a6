"""The runner as judge (DESIGN §5): its own measurement, the gates of config/gates.yaml and the
target's tests decide a cycle; agents only propose.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lib import config
from lib.agents.command import end_tree
from lib.quality import measure

NOT_RUN, PASSED, FAILED = "not run", "passed", "failed"


@dataclass
class Verdict:
    """The runner's judgement of one cycle's change."""

    metrics_after: dict
    gates: list[dict]
    tests: dict
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def measure_target(root: Path, target: str) -> dict:
    """The static analysis of the target inside root (a worktree), without per-file detail."""
    return measure.summary(measure.measure(root / target))


def has_tests(folder: Path) -> bool:
    """test_*.py, *_test.py or a tests/ folder anywhere in the target."""
    if folder.is_file():
        return folder.name.startswith("test_") or folder.name.endswith("_test.py")
    return any(path.name.startswith("test_") or path.name.endswith("_test.py") or "tests" in path.parts
               for path in measure.python_files(folder))


def test_command(worktree: Path, target: str) -> list[str] | None:
    """EVOLUTION_TEST_COMMAND, else settings evolution.test_command; `auto` runs pytest on a target
    that holds tests, `none` (or no tests) runs nothing."""
    raw = os.environ.get("EVOLUTION_TEST_COMMAND", "").strip() or config.settings()["evolution"]["test_command"]
    if isinstance(raw, list):
        return [str(part) for part in raw]
    if raw is None or raw.strip().lower() == "none":
        return None
    if raw.strip().lower() == "auto":
        if not has_tests(worktree / target):
            return None
        return [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", target]
    return shlex.split(raw)


def run_tests(worktree: Path, target: str) -> dict:
    """{status: passed|failed|not run, command, summary}: run in the worktree after the patch."""
    argv = test_command(worktree, target)
    if not argv:
        return {"status": NOT_RUN, "command": None, "summary": "no test command for this target"}
    timeout = float(config.settings()["evolution"]["test_timeout_seconds"])
    shown = shlex.join(argv)
    try:
        process = subprocess.Popen(argv, cwd=worktree, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
    except OSError as failure:
        return {"status": FAILED, "command": shown, "summary": f"cannot run: {failure}"}
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:  # the suite's own children (servers, workers) end with it
        end_tree(process)
        process.communicate()
        return {"status": FAILED, "command": shown, "summary": f"timed out after {timeout:g}s"}
    tail = [line for line in (stdout + stderr).strip().splitlines() if line.strip()][-1:] or [""]
    return {"status": PASSED if process.returncode == 0 else FAILED, "command": shown,
            "summary": f"exit {process.returncode}: {tail[0][:200]}"}


def syntax_errors(worktree: Path, files: list[str], target: str = "") -> list[str]:
    """The changed Python files that no longer parse, each with why. The measurement leaves such a file
    out (so its figures can even look better) and no gate speaks for it: the judge must. Measured under the
    target's lint setup, the measurement after the change reads these files back instead of parsing them again."""
    changed = [worktree / name for name in files if name.endswith(".py") and (worktree / name).is_file()]
    setup = measure.lint_setup(worktree / target)
    return [f"{path.relative_to(worktree).as_posix()}: {entry['figures']['syntax_error']}"
            for path, entry in zip(changed, measure.measured_files(changed, setup), strict=True)
            if entry["figures"].get("syntax_error")]


def judge(worktree: Path, target: str, before: dict, files: list[str]) -> Verdict:
    """Check that the changed files parse, measure after the change, gate it against the cycle's baseline
    (a ratchet) and run the tests."""
    broken = syntax_errors(worktree, files, target)
    after = measure_target(worktree, target)
    gates = measure.evaluate_gates(after, config.gates(), before=before)
    tests = run_tests(worktree, target)
    verdict = Verdict(after, gates, tests)
    if broken:
        verdict.problems.append("syntax-error: " + "; ".join(broken[:3]))
    failed = [g for g in gates if g["passed"] is False]
    if failed:
        verdict.problems.append("gates-failed: " + "; ".join(
            f"{g['metric']} {g['before']}->{g['value']} (must be {'>=' if g['direction'] == 'min' else '<='} "
            f"{g['threshold']}{' or no worse' if g['rule'] == 'no regression' else ''})" for g in failed))
    if tests["status"] == FAILED:
        verdict.problems.append(f"tests failed: {tests['summary']}")
    return verdict
