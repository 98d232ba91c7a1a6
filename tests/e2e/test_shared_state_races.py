"""Two operators racing on one evolution through one DynamoDB table (issue 10, item 17): the commands run
as separate processes started together, against moto. Whatever the order the machine runs them in, the
store's conditional writes pick one winner: the assertions hold for every interleaving, and the loser is
told what happened. No record is lost or left 'stopping'."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from backup_helpers import ok, seed, store_records
from evolution_runs import kill_runner, start_hanging, use_command_agent, wait_for

from lib import paths, procs
from lib.store import ACTIVE, exclusive, open_store
from tests.conftest import ROOT

TABLE = "tdev-shared-state"


@pytest.fixture
def shared(tdev, aws, monkeypatch):
    """The installation on a DynamoDB table (moto), as a team shares it."""
    for key, value in {"TDEV_STATE_BACKEND": "dynamodb", "TDEV_STATE_TABLE": TABLE}.items():
        tdev.env[key] = value
        monkeypatch.setenv(key, value)
    open_store(create=True).close()
    return tdev


def together(tdev, *commands: tuple[str, ...], env: list[dict] | None = None) -> list[subprocess.CompletedProcess]:
    """Start every command at once (each `python scripts/<script> args...`), then collect them all."""
    running = []
    for index, (script, *args) in enumerate(commands):
        argv = [sys.executable, str(ROOT / "scripts" / script), *args]
        running.append((argv, subprocess.Popen(argv, env={**tdev.env, **((env or [{}] * len(commands))[index])},
                                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    finished = []
    for argv, process in running:
        stdout, stderr = process.communicate(timeout=180)
        finished.append(subprocess.CompletedProcess(argv, process.returncode, stdout, stderr))
    return finished


def test_graceful_and_force_stops_racing_one_force_wins_and_the_others_are_told(shared, git_repo, runners):
    record = start_hanging(shared, str(git_repo / "packages/agents"), runners)
    evolution_id = record["id"]

    graceful, first, second = together(
        shared, ("stop_evolution.py", "--id", evolution_id, "--graceful", "--timeout", "120"),
        ("stop_evolution.py", "--id", evolution_id, "--force"), ("stop_evolution.py", "--id", evolution_id, "--force"))

    after = open_store().get_evolution(evolution_id)
    assert after["status"] == "killed" and after["error"] == "killed: force stop by operator"
    assert not procs.alive(record["pid"])
    for result in (graceful, first, second):
        assert result.returncode == 0, result.stdout + result.stderr
    winners = [r for r in (first, second) if f"{evolution_id} killed (process group {record['pid']} ended)" in r.stdout]
    assert len(winners) == 1, (first.stdout, second.stdout)
    (loser,) = [r for r in (first, second) if r is not winners[0]]
    for told in (loser, graceful):  # each says how it ended, and by whom
        assert "killed (killed: force stop by operator)" in told.stdout, told.stdout
        assert any(words in told.stdout for words in ("already", "not by this stop", "before the stop took effect"))
    assert [t["status"] for t in open_store().list_tasks(evolution_id=evolution_id)] == ["failed"]
    assert open_store().list_evolutions(statuses=ACTIVE) == []
    audit = [json.loads(line) for line in paths.audit_log().read_text().splitlines()]
    assert sorted(e.get("outcome", "") for e in audit if e.get("mode") == "force") == sorted(
        ["killed", "lost"] if "already" not in loser.stdout else ["killed"])


def test_a_graceful_stop_of_a_dead_runner_ends_killed_not_stopping(shared, git_repo, runners):
    record = start_hanging(shared, str(git_repo / "packages/agents"), runners)
    kill_runner(record)
    (graceful,) = together(shared, ("stop_evolution.py", "--id", record["id"], "--graceful", "--timeout", "120"))
    assert graceful.returncode == 0, graceful.stdout + graceful.stderr
    after = open_store().get_evolution(record["id"])
    assert after["status"] == "killed" and after["error"].startswith("killed: runner died (runner process")
    assert f"python scripts/cleanup.py --evolution {record['id']}" in graceful.stdout


def test_cleanup_racing_a_starting_evolution_leaves_it_running(shared, git_repo, runners):
    target = str(git_repo / "packages/agents")
    use_command_agent(shared, "research", "time.sleep(300)\n")
    starting = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "run_evolution.py"), "--target", target],
                                env=shared.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    evolution_id = wait_for(lambda: (found := open_store().list_evolutions(target=target)) and found[0]["id"])
    runners.append(evolution_id)
    # another operator's cleanup of that evolution, and this machine's sweep of everything that ended
    one, every = together(shared, ("cleanup.py", "--evolution", evolution_id), ("cleanup.py", "--all", "--force"),
                          env=[{"TDEV_HISTORY_DIR": str(shared.base / "operator-b")}, {}])
    stdout, stderr = starting.communicate(timeout=180)

    assert starting.returncode == 0, stderr
    assert stdout.startswith(f"{evolution_id} started")
    assert one.returncode == 1
    (line,) = one.stderr.strip().splitlines()
    assert line.startswith(f"error: evolution {evolution_id} ")
    assert "is starting" in line or "is still running" in line  # which one depends on how far the start got
    assert f"python scripts/stop_evolution.py --id {evolution_id} --graceful" in line
    assert every.returncode == 0, every.stdout + every.stderr
    record = wait_for(lambda: (r := open_store().get_evolution(evolution_id))["status"] == "running" and r)
    assert procs.alive(record["pid"]) and (paths.worktrees_dir() / evolution_id).is_dir()
    assert ok(shared.run("stop_evolution.py", "--id", evolution_id, "--force"))


def test_two_restores_through_one_table_one_is_told_and_no_record_is_lost(shared):
    ids = seed(shared)
    ok(shared.run("backup.py", "--full", "--no-s3"))
    backed_up = store_records()
    store = open_store()
    store.update_evolution(ids["old"], {"status": "failed", "error": "changed after the backup"})
    later = {"id": "evo-29990101000000-abcdef", "target": "/srv/other", "focus": "quality", "cycles": 1,
             "status": "succeeded", "started_at": "2999-01-01T00:00:00+00:00", "dry_run": False}
    store.create_evolution(later)
    # two operators: their own machines' history folders, one table, one backup folder
    hosts = [{"TDEV_HISTORY_DIR": str(shared.base / f"host-{name}")} for name in "ab"]

    with exclusive("restore", 60):  # an operator is mid-restore: the next one is told, and changes nothing
        told = shared.run("restore.py", "--date", "today", "--confirm", env=hosts[1])
    assert told.returncode == 1
    (line,) = told.stderr.strip().splitlines()
    assert f"a restore is already running on host {socket.gethostname()} (pid {os.getpid()}" in line
    assert "this restore changed nothing" in line
    assert store.get_evolution(ids["old"])["error"] == "changed after the backup"

    results = together(shared, ("restore.py", "--date", "today", "--confirm", "--json"),
                       ("restore.py", "--date", "today", "--confirm", "--json"), env=hosts)
    done = [r for r in results if r.returncode == 0]
    assert done, [r.stderr for r in results]
    for result in results:
        if result.returncode:
            assert result.returncode == 1 and "a restore is already running on host" in result.stderr
    assert store.get_evolution(ids["old"])["status"] == "succeeded"  # the backup's record is back
    assert store.get_evolution(later["id"])["status"] == "succeeded"  # the record made after it is kept
    assert set(backed_up) <= set(store_records())
    assert store.client.get_item(TableName=TABLE, Key={"pk": {"S": "claim#restore"}}).get("Item") is None
