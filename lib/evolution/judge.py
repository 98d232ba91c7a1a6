"""The runner as judge (DESIGN §5): its own measurement, the gates of config/gates.yaml and the
target's tests decide a cycle; agents only propose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lib import config
from lib.evolution import testing
from lib.evolution.testing import FAILED, PASSED
from lib.quality import measure


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


def syntax_errors(worktree: Path, files: list[str], target: str = "") -> list[str]:
    """The changed Python files that no longer parse, each with why. The measurement leaves such a file
    out (so its figures can even look better) and no gate speaks for it: the judge must. Measured under the
    target's lint setup, the measurement after the change reads these files back instead of parsing them again."""
    changed = [worktree / name for name in files if name.endswith(".py") and (worktree / name).is_file()]
    setup = measure.lint_setup(worktree / target)
    return [f"{path.relative_to(worktree).as_posix()}: {entry['figures']['syntax_error']}"
            for path, entry in zip(changed, measure.measured_files(changed, setup), strict=True)
            if entry["figures"].get("syntax_error")]


def judge(worktree: Path, target: str, before: dict, change, tests_plan: testing.TestPlan, base_tests: dict | None,
          junit: Path) -> Verdict:
    """Check that the changed files parse, measure after the change, gate it against the cycle's baseline
    (a ratchet), run the tests and hold them against their run on the base (DESIGN §5)."""
    broken = syntax_errors(worktree, change.files, target)
    after = measure_target(worktree, target)
    gates = measure.evaluate_gates(after, config.gates(), before=before)
    tests = testing.run(tests_plan, worktree, junit)
    verdict = Verdict(after, gates, tests)
    if broken:
        verdict.problems.append("syntax-error: " + "; ".join(broken[:3]))
    weak = testing.weakened(worktree, change.entries, base_tests, tests)
    if weak:
        verdict.problems.append("tests-weakened: " + "; ".join(weak[:3]))
    failed = [g for g in gates if g["passed"] is False]
    if failed:
        verdict.problems.append("gates-failed: " + "; ".join(
            f"{g['metric']} {g['before']}->{g['value']} (must be {'>=' if g['direction'] == 'min' else '<='} "
            f"{g['threshold']}{' or no worse' if g['rule'] == 'no regression' else ''})" for g in failed))
    broke, blamed = testing.blame(base_tests, tests) if base_tests else (tests["status"] == FAILED, [])
    tests["blamed"] = blamed
    if broke:
        tests["status"] = FAILED
        shown = ", ".join(blamed[:5]) + (f" and {len(blamed) - 5} more" if len(blamed) > 5 else "")
        verdict.problems.append(f"tests failed: {shown} ({tests['summary']})" if blamed
                                else f"tests failed: {tests['summary']}")
    elif tests["status"] == FAILED and base_tests:  # it failed on the base too: reported, not blamed
        if tests["failed"]:  # the ids show that every other test passed
            tests["status"] = PASSED
            tests["summary"] += f"; {len(tests['failed'])} test(s) failing on the base too"
        else:
            tests["summary"] += "; the same command failed on the base too"
    return verdict
