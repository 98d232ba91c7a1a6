"""cleanup.py and gc.py: what they remove, what they keep, dry runs, confirmation, locks, audit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from evolution_seed import add_evolution, stamp

from lib import cli, paths
from lib.adapters import gitops

DAY = 86400


def touch(path: Path, age_seconds: float = 0, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    moment = time.time() - age_seconds
    os.utime(path, (moment, moment))
    return path


def audit_lines() -> list[dict]:
    log = paths.audit_log()
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def listed(path: Path, output: str) -> bool:
    return any(str(path) in line.split() for line in output.splitlines())


def one_error_line(result, code: int) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


# ---- cleanup.py --temp -------------------------------------------------------------------------------

@pytest.fixture
def temp_layout(tdev, store):
    """Old and fresh temporary files, plus things that must survive whatever their age."""
    ended = add_evolution(store, status="failed")
    active = add_evolution(store, status="running", finished_at=None, target="/srv/active")
    history, tmp = paths.history_dir(), paths.tmp_dir()
    layout = {
        "old_scratch": touch(tmp / ended["id"] / "notes.txt", 2 * DAY).parent,
        "old_rotated": touch(history / "current.log.1", 3 * DAY),
        "old_tmp": touch(history / ended["id"] / "tasks" / ".task-x.json.abc123.tmp", 2 * DAY),
        "old_part": touch(tdev.backup_dir / "daily" / "x.tar.zst.part", 2 * DAY),
        "fresh_scratch": touch(tmp / "evo-20991231000000-ffffff" / "work.txt").parent,
        "fresh_part": touch(history / "download.part"),
        "active_scratch": touch(tmp / active["id"] / "old.txt", 5 * DAY).parent,
        "current_log": touch(history / "current.log", 5 * DAY),
        "worktree_tmp": touch(paths.worktrees_dir() / ended["id"] / "keep.tmp", 5 * DAY),
    }
    for folder in (layout["old_scratch"], layout["active_scratch"]):
        os.utime(folder, (time.time() - 5 * DAY,) * 2)
    return layout


def test_temp_dry_run_lists_every_item_and_removes_nothing(tdev, temp_layout):
    result = tdev.run("cleanup.py", "--temp", "--older-than", "24h", "--dry-run")
    assert result.returncode == 0, result.stderr
    for key in ("old_scratch", "old_rotated", "old_tmp", "old_part"):
        assert listed(temp_layout[key], result.stdout), key
    for key in ("fresh_scratch", "fresh_part", "active_scratch", "current_log", "worktree_tmp"):
        assert not listed(temp_layout[key], result.stdout), key
    assert "dry run: 4 item(s) would be cleaned up" in result.stderr
    assert all(path.exists() for path in temp_layout.values())
    assert audit_lines() == []


def test_temp_removes_old_files_only_and_is_idempotent(tdev, temp_layout):
    result = tdev.run("cleanup.py", "--temp", "--older-than", "24h", "--verbose")
    assert result.returncode == 0, result.stderr
    assert "4 of 4 item(s) done" in result.stderr
    for key in ("old_scratch", "old_rotated", "old_tmp", "old_part"):
        assert not temp_layout[key].exists(), key
    for key in ("fresh_scratch", "fresh_part", "active_scratch", "current_log", "worktree_tmp"):
        assert temp_layout[key].exists(), key
    entry = audit_lines()[-1]
    assert entry["result"] == "ok" and entry["done"] == {"remove": 4} and entry["mode"] == "temp"
    assert entry["command"].startswith("cleanup.py --temp --older-than 24h")
    again = tdev.run("cleanup.py", "--temp", "--older-than", "24h", "--verbose")
    assert again.returncode == 0 and "nothing to clean up" in again.stderr


def test_temp_honours_evolution_dry_run_and_a_shorter_age(tdev, temp_layout):
    dry = tdev.run("cleanup.py", "--temp", "--older-than", "1s", env={"EVOLUTION_DRY_RUN": "true"})
    assert dry.returncode == 0 and "dry run" in dry.stderr and temp_layout["fresh_part"].exists()
    time.sleep(1.1)
    result = tdev.run("cleanup.py", "--temp", "--older-than", "1s")
    assert result.returncode == 0 and not temp_layout["fresh_part"].exists()
    assert temp_layout["active_scratch"].exists() and temp_layout["current_log"].exists()


def test_temp_prunes_measurement_cache_entries_unused_for_30_days_in_one_row(tdev, store):
    cache = paths.history_dir() / "measure_cache"
    unused = [touch(cache / "ab" / f"ab{n:062x}.json", 40 * DAY, '{"figures": {}}') for n in range(3)]
    used = touch(cache / "cd" / f"cd{0:062x}.json", 2 * DAY, '{"figures": {}}')  # older than 24h, used within 30 days
    dry = tdev.run("cleanup.py", "--temp", "--older-than", "24h", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    row = next(line for line in dry.stdout.splitlines() if "measure_cache" in line)
    assert "3 entries of" in row and "unused for more than 30 days" in row
    assert all(path.exists() for path in [*unused, used])
    done = tdev.run("cleanup.py", "--temp", "--older-than", "24h", "--verbose")
    assert done.returncode == 0 and "1 of 1 item(s) done" in done.stderr, done.stderr
    assert not any(path.exists() for path in unused) and used.exists()


@pytest.mark.parametrize("args, code", [
    ([], 2), (["--temp", "--all"], 2), (["--temp", "--older-than", "soon"], 2), (["--older-than", "24h"], 2),
    (["--evolution", "evo-20240101000000-000000"], 1),
])
def test_cleanup_bad_input(tdev, store, args, code):
    one_error_line(tdev.run("cleanup.py", *args), code)


def test_a_second_run_while_the_lock_is_held_exits_with_a_clear_message(tdev, store):
    with cli.lock("cleanup"):
        result = tdev.run("cleanup.py", "--temp")
    one_error_line(result, 1)
    assert "cleanup is already running" in result.stderr


# ---- cleanup.py --evolution / --all ---------------------------------------------------------------------

def add_worktree(repo: Path, evolution_id: str, branch: str | None = None) -> Path:
    path = paths.worktrees_dir() / evolution_id
    gitops.add_worktree(repo, path, branch or f"tdev/auto/20240101-quality-{evolution_id.rsplit('-', 1)[-1]}")
    return path


def test_evolution_refused_while_its_runner_is_alive(tdev, store, git_repo):
    record = add_evolution(store, status="running", finished_at=None, target=str(git_repo / "packages/agents"))
    runner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                              env={**os.environ, "TDEV_EVOLUTION_ID": record["id"]})
    try:
        store.update_evolution(record["id"], {"pid": runner.pid, "heartbeat_at": stamp(datetime.now(UTC))})
        worktree = add_worktree(git_repo, record["id"])
        result = tdev.run("cleanup.py", "--evolution", record["id"])
        one_error_line(result, 1)
        assert "still running" in result.stderr and "stop_evolution.py --id" in result.stderr
        assert worktree.exists() and store.get_evolution(record["id"])["status"] == "running"
    finally:
        runner.kill()
        runner.wait()


def test_evolution_on_another_host_with_fresh_heartbeat_is_refused(tdev, store):
    record = add_evolution(store, status="running", finished_at=None, host="far-away", pid=1234,
                           heartbeat_at=stamp(datetime.now(UTC)))
    result = tdev.run("cleanup.py", "--evolution", record["id"])
    one_error_line(result, 1)
    assert "runs on host far-away" in result.stderr


def test_evolution_that_ended_loses_worktree_and_scratch_but_keeps_its_status(tdev, store, git_repo):
    record = add_evolution(store, status="stopped", target=str(git_repo / "packages/agents"))
    worktree = add_worktree(git_repo, record["id"])
    scratch = touch(paths.tmp_dir() / record["id"] / "a.txt").parent
    dry = tdev.run("cleanup.py", "--evolution", record["id"], "--dry-run")
    assert dry.returncode == 0 and listed(worktree, dry.stdout) and listed(scratch, dry.stdout)
    assert worktree.exists() and scratch.exists()
    result = tdev.run("cleanup.py", "--evolution", record["id"])
    assert result.returncode == 0, result.stderr
    assert not worktree.exists() and not scratch.exists()
    assert str(worktree) not in gitops.git(git_repo, "worktree", "list")
    assert store.get_evolution(record["id"])["status"] == "stopped"


def test_dead_evolution_on_another_host_with_stale_heartbeat_is_marked_killed(tdev, store):
    record = add_evolution(store, status="stopping", finished_at=None, host="far-away", pid=1234,
                           heartbeat_at=stamp(datetime.now(UTC) - timedelta(minutes=5)))
    result = tdev.run("cleanup.py", "--evolution", record["id"])
    assert result.returncode == 0, result.stderr
    after = store.get_evolution(record["id"])
    assert after["status"] == "killed" and after["error"] == "cleaned up: process gone"


def test_all_refuses_without_force_then_cleans_every_ended_evolution(tdev, store, git_repo):
    target = str(git_repo / "packages/agents")
    ended = add_evolution(store, status="succeeded", target=target)
    unchanged = add_evolution(store, status="unchanged", target="/srv/quiet")  # final too
    active = add_evolution(store, status="running", finished_at=None, target="/srv/other")
    ended_tree = add_worktree(git_repo, ended["id"])
    unchanged_tree = add_worktree(git_repo, unchanged["id"])
    active_tree = add_worktree(git_repo, active["id"])
    stray = touch(paths.worktrees_dir() / "evo-20200101000000-aaaaaa" / "file.txt").parent
    ended_tmp = touch(paths.tmp_dir() / ended["id"] / "x.txt").parent
    active_tmp = touch(paths.tmp_dir() / active["id"] / "x.txt").parent
    refused = tdev.run("cleanup.py", "--all")
    one_error_line(refused, 2)
    assert "--force" in refused.stderr and ended_tree.exists()
    dry = tdev.run("cleanup.py", "--all", "--dry-run")
    assert dry.returncode == 0 and listed(ended_tree, dry.stdout) and ended_tree.exists()
    result = tdev.run("cleanup.py", "--all", "--force", "--verbose")
    assert result.returncode == 0, result.stderr
    assert not ended_tree.exists() and not stray.exists() and not ended_tmp.exists()
    assert not unchanged_tree.exists() and "evolution unchanged" in result.stdout
    assert active_tree.exists() and active_tmp.exists()
    assert audit_lines()[-1]["mode"] == "all"


# ---- gc.py ------------------------------------------------------------------------------------------------------

def branch_for(evolution_id: str) -> str:
    return f"tdev/auto/20240101-quality-{evolution_id.rsplit('-', 1)[-1]}"


def make_branch(repo: Path, evolution_id: str, days_old: float | None) -> str:
    """An auto branch: at main (merged) when days_old is None, else one commit that old."""
    branch = branch_for(evolution_id)
    gitops.git(repo, "branch", branch, "main")
    if days_old is not None:
        when = f"@{int(time.time() - days_old * DAY)} +0000"
        env = {**os.environ, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
        gitops.git(repo, "checkout", "-q", branch)
        (repo / f"{evolution_id}.txt").write_text("change\n")
        subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
        subprocess.run(["git", "commit", "-qm", "change"], cwd=repo, check=True, env=env)
        gitops.git(repo, "checkout", "-q", "main")
    return branch


@pytest.fixture
def gc_layout(tdev, store, git_repo):
    target = str(git_repo / "packages/agents")
    now = datetime.now(UTC)

    def evo(status="failed", days=0.0, **fields):
        return add_evolution(store, status=status, target=target, started=now - timedelta(days=days), **fields)

    records = {
        "merged": evo("succeeded"),
        "abandoned": evo(days=10),
        "recent": evo(days=1),
        "open_pr": evo("succeeded", days=1, pr_number=7),
        "closed_pr": evo("succeeded", days=20, pr_number=8),
        "active": evo("running", finished_at=None),
        "ancient": evo("succeeded", days=120),
        "middle": evo("succeeded", days=60),
    }
    ages = {"merged": None, "abandoned": 10, "recent": 1, "open_pr": 1, "closed_pr": 20, "active": None}
    branches = {name: make_branch(git_repo, records[name]["id"], age) for name, age in ages.items()}
    for name in ("abandoned", "recent", "open_pr", "closed_pr"):  # pushed: a remote holds their commits
        gitops.git(git_repo, "push", "-q", "origin", branches[name])
    add_worktree(git_repo, records["active"]["id"], "tdev/auto/active-worktree")
    orphan_tree = add_worktree(git_repo, records["recent"]["id"], "tdev/auto/orphan-worktree")
    for name in ("ancient", "middle", "recent", "active"):
        touch(paths.evolution_dir(records[name]["id"]) / "evolution.log")
    return {"records": records, "branches": branches, "repo": git_repo, "orphan_tree": orphan_tree}


def remaining_branches(repo: Path) -> set[str]:
    return set(gitops.auto_branches(repo))


def test_gc_dry_run_lists_and_changes_nothing(tdev, gc_layout):
    before = remaining_branches(gc_layout["repo"])
    result = tdev.run("gc.py", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert listed(gc_layout["orphan_tree"], result.stdout) and "compact" in result.stdout
    assert remaining_branches(gc_layout["repo"]) == before and gc_layout["orphan_tree"].exists()


def test_gc_removes_orphans_merged_and_abandoned_branches_and_old_artifacts(tdev, gc_layout, store):
    records, branches, repo = gc_layout["records"], gc_layout["branches"], gc_layout["repo"]
    result = tdev.run("gc.py")
    assert result.returncode == 0, result.stdout + result.stderr
    left = remaining_branches(repo)
    assert branches["merged"] not in left and branches["abandoned"] not in left
    for kept in ("recent", "open_pr", "closed_pr", "active"):
        assert branches[kept] in left, kept
    assert "tdev/auto/active-worktree" in left
    assert not gc_layout["orphan_tree"].exists()
    assert (paths.worktrees_dir() / records["active"]["id"]).exists()
    assert not paths.evolution_dir(records["ancient"]["id"]).exists()
    for kept in ("middle", "recent", "active"):
        assert paths.evolution_dir(records[kept]["id"]).exists()
    assert store.check() == "ok"
    entry = audit_lines()[-1]
    assert entry["result"] == "ok" and entry["aggressive"] is False and entry["done"]["compact"] == 1


def test_gc_aggressive_asks_github_for_open_prs(tdev, gc_layout, github):
    records, branches, repo = gc_layout["records"], gc_layout["branches"], gc_layout["repo"]
    github.add_pull(number=7, head={"ref": branches["open_pr"], "sha": "0" * 40}, state="open")
    github.add_pull(number=8, head={"ref": branches["closed_pr"], "sha": "0" * 40}, state="closed")
    result = tdev.run("gc.py", "--aggressive")
    assert result.returncode == 0, result.stdout + result.stderr
    left = remaining_branches(repo)
    assert branches["open_pr"] in left and branches["active"] in left
    for gone in ("merged", "abandoned", "recent", "closed_pr"):
        assert branches[gone] not in left, gone
    assert not paths.evolution_dir(records["middle"]["id"]).exists()
    assert paths.evolution_dir(records["recent"]["id"]).exists()


def test_gc_aggressive_without_github_keeps_branches_with_a_pr(tdev, gc_layout):
    branches = gc_layout["branches"]
    result = tdev.run("gc.py", "--aggressive")
    assert result.returncode == 0, result.stderr
    assert "GitHub not configured" in result.stderr
    left = remaining_branches(gc_layout["repo"])
    assert branches["open_pr"] in left and branches["closed_pr"] in left and branches["recent"] not in left


def test_gc_before_init_has_nothing_to_do(tdev):
    result = tdev.run("gc.py", "--verbose")
    assert result.returncode == 0 and "nothing to clean up" in result.stderr


def one_commit_repo(repo: Path) -> Path:
    """A repository on main with one commit of packages/agents, no remote."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    for key, value in (("user.email", "test@example.com"), ("user.name", "Test")):
        gitops.git(repo, "config", key, value)
    touch(repo / "packages" / "agents" / "__init__.py")
    gitops.git(repo, "add", "-A")
    gitops.git(repo, "commit", "-qm", "initial")
    return repo


def test_gc_never_deletes_a_branch_whose_commits_are_on_no_remote(tdev, store, tmp_path):
    repo = one_commit_repo(tmp_path / "solo")  # without origin: its branches are the only copy of the work
    now, target = datetime.now(UTC), str(repo / "packages" / "agents")
    succeeded = add_evolution(store, status="succeeded", target=target, started=now - timedelta(days=20))
    abandoned = add_evolution(store, status="failed", target=target, started=now - timedelta(days=10))
    kept = {make_branch(repo, succeeded["id"], 20), make_branch(repo, abandoned["id"], 10)}

    for args in ((), ("--aggressive",)):
        result = tdev.run("gc.py", *args)
        assert result.returncode == 0, result.stdout + result.stderr
        assert remaining_branches(repo) == kept
    for branch in kept:
        assert f"kept {branch} (" in result.stderr and "its commits are on no remote" in result.stderr
        assert f"git -C {repo} branch -D {branch}" in result.stderr

    origin = tmp_path / "solo-origin.git"  # once a remote holds the commits, the branch may go
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    gitops.git(repo, "remote", "add", "origin", str(origin))
    gitops.git(repo, "push", "-q", "origin", branch_for(succeeded["id"]))
    result = tdev.run("gc.py", "--aggressive")
    assert result.returncode == 0, result.stderr
    assert remaining_branches(repo) == {branch_for(abandoned["id"])}


def test_gc_asks_the_remote_and_keeps_a_branch_deleted_there_despite_a_stale_tracking_ref(tdev, store, tmp_path):
    repo, origin = one_commit_repo(tmp_path / "work"), tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    gitops.git(repo, "remote", "add", "origin", str(origin))
    gitops.git(repo, "push", "-q", "-u", "origin", "main")
    now, target = datetime.now(UTC), str(repo / "packages" / "agents")
    failed = add_evolution(store, status="failed", target=target, started=now - timedelta(days=10))
    branch = make_branch(repo, failed["id"], 10)
    gitops.git(repo, "push", "-q", "origin", branch)
    (repo / "later.txt").write_text("work done after the push\n")  # a later commit only this clone holds
    gitops.git(repo, "checkout", "-q", branch)
    gitops.git(repo, "add", "-A")
    gitops.git(repo, "commit", "-qm", "later")
    gitops.git(repo, "checkout", "-q", "main")
    gitops.git(repo, "update-ref", f"refs/remotes/origin/{branch}", gitops.git(repo, "rev-parse", branch))
    subprocess.run(["git", "--git-dir", str(origin), "branch", "-D", branch], check=True, capture_output=True)
    assert gitops.git(repo, "for-each-ref", f"refs/remotes/origin/{branch}")  # the stale ref claims it is pushed

    result = tdev.run("gc.py", "--aggressive")
    assert result.returncode == 0, result.stdout + result.stderr
    assert remaining_branches(repo) == {branch}
    assert f"kept {branch} (" in result.stderr and "its commits are on no remote" in result.stderr
    assert gitops.git(repo, "log", "-1", "--format=%s", branch) == "later"

    gitops.git(repo, "push", "-q", "origin", branch)  # asked again, the remote holds it: the branch may go
    result = tdev.run("gc.py", "--aggressive")
    assert result.returncode == 0, result.stderr
    assert remaining_branches(repo) == set()
