"""gc judges "pushed" by asking the remote (git ls-remote), never by a remote-tracking ref."""

from __future__ import annotations

import subprocess

from lib.adapters import gitops
from lib.ops import cleanup


def test_a_stale_tracking_ref_proves_nothing_and_an_unreachable_remote_is_noted(tmp_path):
    repo, origin = tmp_path / "work", tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    for key, value in (("user.email", "t@example.com"), ("user.name", "T")):
        gitops.git(repo, "config", key, value)
    gitops.git(repo, "commit", "-q", "--allow-empty", "-m", "initial")
    gitops.git(repo, "branch", "work")
    gitops.git(repo, "remote", "add", "origin", str(origin))
    gitops.git(repo, "push", "-q", "origin", "work")
    plan = cleanup.Plan()
    assert cleanup._on_remote(repo, "work", cleanup._remote_heads(repo, plan))

    subprocess.run(["git", "--git-dir", str(origin), "branch", "-D", "work"], check=True, capture_output=True)
    assert gitops.git(repo, "for-each-ref", "refs/remotes/origin/work")  # still there, stale
    assert not cleanup._on_remote(repo, "work", cleanup._remote_heads(repo, plan))

    gitops.git(repo, "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    assert cleanup._remote_heads(repo, plan) == [] and "remote origin did not answer" in plan.notes[-1]
