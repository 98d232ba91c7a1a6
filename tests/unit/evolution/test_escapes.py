"""Unit tests of escape detection (lib/evolution/escapes.py, DESIGN §5 "Escapes") on a real repository."""

from __future__ import annotations

import subprocess

import pytest

from lib.evolution import escapes
from tests.conftest import git


@pytest.fixture
def repo(tmp_path):
    work = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "kept.py").write_text("x = 1\n")
    (work / "dirty.py").write_text("y = 1\n")
    git(work, "add", "-A")
    git(work, "-c", "user.email=t@example.com", "-c", "user.name=T", "commit", "-q", "-m", "initial")
    (work / "dirty.py").write_text("y = 2\n")  # the operator's own unfinished work
    return work


def test_nothing_changed_is_no_escape(repo):
    before = escapes.snapshot(repo)
    assert escapes.escaped("agent", before, escapes.snapshot(repo)) is None
    assert "dirty.py" in before and ".git/config" in before


@pytest.mark.parametrize("change, path", [
    (lambda repo: (repo / "kept.py").write_text("x = 2\n"), "kept.py"),
    (lambda repo: (repo / "dirty.py").write_text("y = 3\n"), "dirty.py"),  # already dirty, changed again
    (lambda repo: (repo / "deep" / "new").mkdir(parents=True) or (repo / "deep" / "new" / "f.txt").write_text("n"),
     "deep/new/f.txt"),
    (lambda repo: (repo / ".git" / "hooks" / "post-commit").write_text("#!/bin/sh\n"), ".git/hooks/post-commit"),
    (lambda repo: git(repo, "config", "core.hooksPath", "/tmp/elsewhere"), ".git/config"),
    (lambda repo: (repo / "dirty.py").unlink(), "dirty.py"),
], ids=["tracked-file", "dirty-file-again", "untracked-file", "hook", "config", "deleted"])
def test_a_change_outside_the_worktree_is_named(repo, change, path):
    before = escapes.snapshot(repo)
    change(repo)
    found = escapes.escaped("agent", before, escapes.snapshot(repo))
    assert found == f"escaped: agent changed {path} outside its worktree"


def test_several_changes_name_the_first_and_count_the_rest(repo):
    before = escapes.snapshot(repo)
    (repo / "kept.py").write_text("x = 3\n")
    (repo / "other.txt").write_text("o")
    assert escapes.escaped("agent", before, escapes.snapshot(repo)) == (
        "escaped: agent changed kept.py outside its worktree (and 1 more)")


def test_a_linked_worktree_of_the_checkout_is_not_the_checkout(repo, tmp_path):
    before = escapes.snapshot(repo)
    git(repo, "worktree", "add", "-q", "-b", "evo", str(tmp_path / "wt"))
    (tmp_path / "wt" / "kept.py").write_text("x = 9\n")
    assert escapes.escaped("agent", before, escapes.snapshot(repo)) is None


def test_the_runners_own_history_inside_the_checkout_is_left_out(repo):
    history = repo / "evolution_history"
    history.mkdir()
    before = escapes.snapshot(repo, own=(history,))
    (history / "current.log").write_text("a line the runner wrote during the phase\n")
    assert escapes.escaped("agent", before, escapes.snapshot(repo, own=(history,))) is None
