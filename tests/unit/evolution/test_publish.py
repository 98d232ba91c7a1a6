"""lib/evolution/publish.py: what a passing cycle leaves behind (DESIGN §5): exactly the judged change committed
with its trailers, then the pushed branch and one labelled PR - from a Publication record, on real git
repositories and the GitHub stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.adapters import github as github_api
from lib.adapters import gitops
from lib.evolution import lifecycle, patching, publish
from lib.evolution.judge import Verdict
from tests.conftest import git

TARGET = "packages/agents"
BEFORE = {"docstring": 50.0, "lint": 3, "sloc": 10}
AFTER = {"docstring": 75.0, "lint": 3, "sloc": 12}
PASSED_TESTS = {"status": "passed", "command": "pytest -q", "summary": "3 passed"}


class Lines:
    """The runner's log as publish uses it: the lines it was given, by level."""

    def __init__(self):
        self.lines: list[tuple[str, str]] = []

    def info(self, line: str) -> None:
        self.lines.append(("info", line))

    def warning(self, line: str) -> None:
        self.lines.append(("warning", line))


@pytest.fixture
def worktree(git_repo, tdev, tmp_path) -> Path:
    path = tmp_path / "worktree"
    gitops.add_worktree(git_repo, path, "tdev/auto/20260101-quality-abc123")
    return path


def change_in(worktree: Path, store) -> patching.Change:
    return patching.apply_output(worktree, TARGET, store, {"edits": [
        {"path": f"{TARGET}/sample.py", "search": "def add(a, b):\n", "replace": 'def add(a, b):\n    """Sum."""\n'}]})


def publication(repo: Path, worktree: Path, change: patching.Change, *, dry_run: bool = False,
                feedback: list | None = None, attempt: int = 1, evolution_id: str = "evo-20260101-abc123"
                ) -> publish.Publication:
    return publish.Publication(
        evolution_id, "quality", 1, 2, dry_run, repo, worktree, "tdev/auto/20260101-quality-abc123",
        TARGET, BEFORE, Verdict(AFTER, [], dict(PASSED_TESTS)), change, "added a docstring", feedback or [], attempt)


def test_the_metrics_table_and_trailer_show_before_and_after():
    table = publish.metrics_table(BEFORE, AFTER)
    assert "| Docstring coverage | 50.0% | 75.0% |" in table
    assert "| Test coverage | n/a | n/a |" in table
    assert publish.metrics_impact(BEFORE, AFTER) == "docstring 50.0->75.0, sloc 10->12"
    assert publish.metrics_impact(BEFORE, BEFORE) == "none"


def test_tests_not_run_are_never_dressed_up_as_passed():
    assert publish.tests_line({"status": "not run", "summary": "no test command"}) == \
        "Tests: **not run** (no test command)."
    assert publish.tests_line(PASSED_TESTS) == "Tests: **passed** (`pytest -q`: 3 passed)."


def test_the_attempts_section_lists_each_refusal_masked_then_the_pass():
    feedback = [{"attempt": 1, "error": "bad-patch: token ghp_" + "a" * 36 + " in a file"}]
    section = publish.attempts_section(feedback, 2)
    assert section.splitlines()[0] == "Attempts: 2"
    assert "ghp_" + "a" * 36 not in section and "- attempt 1: refused: bad-patch:" in section
    assert section.splitlines()[-1] == "- attempt 2: passed"


def test_commit_records_the_judged_change_with_its_trailers(git_repo, worktree, store):
    change = change_in(worktree, store)
    sha = publish.commit(publication(git_repo, worktree, change), Lines())
    message = git(worktree, "log", "-1", "--format=%B", sha)
    assert message.splitlines()[0] == f"tdev: quality improvements in {TARGET} (cycle 1)"
    assert f"Changed: {TARGET}/sample.py" in message
    assert "Metrics-Impact: docstring 50.0->75.0, sloc 10->12" in message
    assert ("Evolution-Context: evo-20260101-abc123; cycle 1/2; focus quality; change quality/refactor-agent; "
            "tests passed") in message
    assert git(worktree, "status", "--porcelain") == ""


def test_what_the_worktree_gained_after_the_judgement_is_not_committed(git_repo, worktree, store):
    change = change_in(worktree, store)
    (worktree / TARGET / "report.xml").write_text("<testsuite/>")  # the test run's leftovers
    (worktree / TARGET / "__init__.py").write_text('"""Edited by the evaluator."""\n')
    log = Lines()
    sha = publish.commit(publication(git_repo, worktree, change), log)
    assert git(worktree, "show", "--name-only", "--format=", sha).splitlines() == [f"{TARGET}/sample.py"]
    assert (worktree / TARGET / "__init__.py").read_text() == '"""Agents."""\n'
    assert not (worktree / TARGET / "report.xml").exists()
    assert [level for level, _ in log.lines] == ["warning"]


def test_a_dry_run_pushes_nothing(git_repo, worktree, store, github):
    change = change_in(worktree, store)
    record = publication(git_repo, worktree, change, dry_run=True)
    sha = publish.commit(record, Lines())
    assert publish.open_pull_request(record, sha, store, Lines()) is None
    assert git(git_repo, "ls-remote", "--heads", "origin", record.branch) == ""
    assert github.pulls == {}


def test_without_github_the_branch_is_pushed_and_no_pr_opened(git_repo, worktree, store):
    change = change_in(worktree, store)
    record = publication(git_repo, worktree, change)
    sha = publish.commit(record, Lines())
    log = Lines()
    assert publish.open_pull_request(record, sha, store, log) is None
    assert git(git_repo, "ls-remote", "--heads", "origin", record.branch).startswith(sha)
    assert log.lines[-1][0] == "warning" and "no PR opened" in log.lines[-1][1]


def test_the_pr_is_opened_once_labelled_with_the_cycle_in_its_body(git_repo, worktree, store, github):
    evolution = lifecycle.create(store, git_repo / TARGET, "quality", 2, False)
    change = change_in(worktree, store)
    record = publication(git_repo, worktree, change, feedback=[{"attempt": 1, "error": "tests failed: test_add"}],
                         attempt=2, evolution_id=evolution["id"])
    sha = publish.commit(record, Lines())
    pr = publish.open_pull_request(record, sha, store, Lines())
    opened = github.pulls[pr["number"]]
    assert opened["head"]["ref"] == record.branch and opened["base"]["ref"] == "main"
    assert [label["name"] for label in opened["labels"]] == [github_api.AUTO_LABEL]
    body = opened["body"]
    assert "Summary (from the agent): added a docstring" in body
    assert "- attempt 1: refused: tests failed: test_add" in body and "- attempt 2: passed" in body
    assert f"- `{TARGET}/sample.py`" in body
    store.update_evolution(record.evolution_id, {"pr_number": pr["number"]})
    assert publish.open_pull_request(record, sha, store, Lines()) is None  # the push updated the open PR
    assert len(github.pulls) == 1
