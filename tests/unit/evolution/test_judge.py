"""lib/evolution/judge.py: the runner decides a cycle by its own measurement, the gates and the tests
(DESIGN §5), here on a real git repository with a real test command: each refusal names its reason."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from lib.evolution import judge, patching, testing
from tests.conftest import git

TARGET = "pkg"
DOCUMENTED = '"""A module."""\n\n\ndef add(a, b):\n    """Sum."""\n    return a + b\n'


@pytest.fixture
def repo(tmp_path, tdev) -> Path:
    root = tmp_path / "r"
    (root / TARGET).mkdir(parents=True)
    (root / TARGET / "m.py").write_text(DOCUMENTED)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "i")
    return root


def use_tests_exiting(monkeypatch, code: int) -> None:
    """The target's test command: a program that exits with code."""
    command = [sys.executable, "-c", f"import sys; print('ran'); sys.exit({code})"]
    monkeypatch.setenv("EVOLUTION_TEST_COMMAND", shlex.join(command))


def decide(repo: Path, store, content: str, base_tests: dict | None = None) -> judge.Verdict:
    before = judge.measure_target(repo, TARGET)
    change = patching.apply_output(repo, TARGET, store, {"files": [{"path": f"{TARGET}/m.py", "content": content}]})
    return judge.judge(repo, TARGET, before, change, testing.plan(repo, TARGET), base_tests, repo / "junit.xml")


def test_a_sound_change_passes_with_the_runner_s_own_figures(repo, store, monkeypatch):
    use_tests_exiting(monkeypatch, 0)
    verdict = decide(repo, store, DOCUMENTED + '\n\ndef sub(a, b):\n    """Difference."""\n    return a - b\n')
    assert verdict.passed and verdict.problems == []
    assert verdict.metrics_after["docstring"] == 100.0
    assert verdict.tests["status"] == testing.PASSED and verdict.tests["blamed"] == []
    assert {gate["metric"] for gate in verdict.gates} >= {"docstring", "complexity"}


def test_a_file_that_no_longer_parses_is_refused_though_its_figures_look_better(repo, store, monkeypatch):
    use_tests_exiting(monkeypatch, 0)
    verdict = decide(repo, store, DOCUMENTED + "def broken(:\n")
    assert not verdict.passed
    assert verdict.problems[0].startswith(f"syntax-error: {TARGET}/m.py: ")


def test_a_change_below_a_gate_it_met_before_is_refused(repo, store, monkeypatch):
    use_tests_exiting(monkeypatch, 0)
    verdict = decide(repo, store, "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n")
    docstring = next(gate for gate in verdict.gates if gate["metric"] == "docstring")
    assert docstring["passed"] is False and docstring["before"] == 100.0
    assert verdict.problems == [f"gates-failed: docstring 100.0->{docstring['value']} (must be >= 50)"]


def test_tests_that_fail_after_the_change_are_blamed_on_it(repo, store, monkeypatch):
    use_tests_exiting(monkeypatch, 1)
    verdict = decide(repo, store, DOCUMENTED + "\nX = 1\n")
    assert verdict.tests["status"] == testing.FAILED
    assert verdict.problems == [f"tests failed: {verdict.tests['summary']}"]
    assert verdict.tests["summary"] == "exit 1: ran"


def test_tests_that_failed_on_the_base_too_are_reported_not_blamed(repo, store, monkeypatch):
    use_tests_exiting(monkeypatch, 1)
    base = testing.run(testing.plan(repo, TARGET), repo, repo / "base.xml")
    verdict = decide(repo, store, DOCUMENTED + "\nX = 1\n", base_tests=base)
    assert verdict.passed
    assert verdict.tests["summary"].endswith("; the same command failed on the base too")


def test_no_test_command_is_not_run_and_not_a_refusal(repo, store, monkeypatch):
    monkeypatch.setenv("EVOLUTION_TEST_COMMAND", "none")
    verdict = decide(repo, store, DOCUMENTED + "\nX = 1\n")
    assert verdict.passed and verdict.tests["status"] == testing.NOT_RUN
