"""check_stuck_processes.py and lib/evolution/stuck.py: dead runners, stale heartbeats, overdue phases,
orphaned agents, and the kill -9 fault with the real runner."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from evolution_seed import add_evolution, stamp, task_id

from lib import paths
from lib.adapters import gitops
from lib.evolution import lifecycle
from lib.store import open_store
from tests.conftest import EMPTY_PLAN_AGENT

SLEEPER = [sys.executable, "-c", "import time; time.sleep(300)"]


@pytest.fixture
def spawn(processes):
    """Start long-running processes, optionally carrying TDEV_EVOLUTION_ID as an agent of an evolution does."""
    def start(evolution_id: str | None = None) -> subprocess.Popen:
        return processes(SLEEPER, env={**os.environ, **({"TDEV_EVOLUTION_ID": evolution_id} if evolution_id else {})})

    return start


def kill9(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def running(store, spawn, **fields) -> dict:
    """An evolution marked running whose runner is a live process carrying its id."""
    record = add_evolution(store, status="running", finished_at=None)
    runner = spawn(record["id"])
    store.update_evolution(record["id"], {"pid": runner.pid, "heartbeat_at": stamp(datetime.now(UTC)), **fields})
    return {**store.get_evolution(record["id"]), "process": runner}


def check(tdev, *args, env=None):
    return tdev.run("check_stuck_processes.py", *args, env=env)


def test_nothing_active_is_ok(tdev, store):
    add_evolution(store, status="succeeded")
    result = check(tdev)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("STUCK OK: 0 active evolution(s), none stuck")


def test_live_runner_with_fresh_heartbeat_is_ok(tdev, store, spawn):
    running(store, spawn)
    result = check(tdev, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": "ok", "active": 1, "findings": []}


def test_dead_runner_is_critical_at_once(tdev, store, spawn):
    record = running(store, spawn)
    kill9(record["process"])
    result = check(tdev)
    assert result.returncode == 2
    assert result.stdout.startswith("STUCK CRITICAL:")
    assert record["id"] in result.stdout and "process-gone" in result.stdout
    assert f"cleanup.py --evolution {record['id']}" in result.stdout


def test_pid_reused_by_another_program_is_critical(tdev, store, spawn):
    record = add_evolution(store, status="running", finished_at=None)
    stranger = spawn()  # no TDEV_EVOLUTION_ID, not a runner command line
    store.update_evolution(record["id"], {"pid": stranger.pid, "heartbeat_at": stamp(datetime.now(UTC))})
    document = json.loads(check(tdev, "--json").stdout)
    assert document["status"] == "critical"
    assert document["findings"][0]["kind"] == "process-gone" and "not the runner" in document["findings"][0]["summary"]


def test_stale_heartbeat_on_another_host_is_critical_fresh_is_ok(tdev, store):
    old = datetime.now(UTC) - timedelta(seconds=60)
    stale = add_evolution(store, status="running", finished_at=None, host="far-away", pid=4242,
                          heartbeat_at=stamp(old), target="/srv/a")
    add_evolution(store, status="running", finished_at=None, host="far-away", pid=4343,
                  heartbeat_at=stamp(datetime.now(UTC)), target="/srv/b")
    result = check(tdev, "--json")
    assert result.returncode == 2
    findings = json.loads(result.stdout)["findings"]
    assert [(f["evolution_id"], f["kind"]) for f in findings] == [(stale["id"], "heartbeat-stale")]
    assert "stale after 10s" in findings[0]["summary"] and findings[0]["host"] == "far-away"


def test_pending_without_runner_and_old_is_critical(tdev, store):
    add_evolution(store, status="pending", finished_at=None, started=datetime.now(UTC) - timedelta(minutes=3),
                  heartbeat_at=None)
    document = json.loads(check(tdev, "--json").stdout)
    assert document["findings"][0]["kind"] == "heartbeat-stale"
    assert "no heartbeat since it started 3m" in document["findings"][0]["summary"]


def test_phase_past_timeout_is_a_warning(tdev, store, spawn):
    record = running(store, spawn)
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    store.create_task({"id": task_id(two_hours_ago), "evolution_id": record["id"], "cycle": 1,
                       "phase": "implement", "agent": "refactor-agent", "status": "running",
                       "started_at": stamp(two_hours_ago), "trace_id": "0" * 32})
    result = check(tdev)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "phase-timeout" in result.stdout and "past TIMEOUT_SECONDS=3600" in result.stdout
    assert check(tdev, env={"TIMEOUT_SECONDS": "10800"}).returncode == 0


@pytest.mark.parametrize("status", ["killed", "unchanged"])
def test_orphaned_agent_process_of_a_final_evolution_is_a_warning(tdev, store, spawn, status):
    ended = add_evolution(store, status=status, error="killed: force stop by operator" if status == "killed" else None)
    orphan = spawn(ended["id"])
    spawn("evo-20240101000000-abcdef")  # an evolution this store does not know: not ours to judge
    result = check(tdev, "--json")
    assert result.returncode == 1
    findings = json.loads(result.stdout)["findings"]
    assert [(f["kind"], f["pid"]) for f in findings] == [("orphan-process", orphan.pid)]


def test_bad_timeout_setting_is_unknown(tdev, store):
    result = check(tdev, env={"TIMEOUT_SECONDS": "soon"})
    assert result.returncode == 3
    assert result.stderr.startswith("error: TIMEOUT_SECONDS='soon'") and len(result.stderr.splitlines()) == 1
    assert check(tdev, "--bogus").returncode == 3


def test_runner_state_units(store, spawn):
    record = running(store, spawn)
    assert lifecycle.runner_state(record)[0] == "alive"
    assert lifecycle.runner_state({**record, "host": "elsewhere"})[0] == "remote"
    assert lifecycle.runner_state({**record, "pid": None})[0] == "unknown"
    kill9(record["process"])
    assert lifecycle.runner_state(record) == ("gone", f"runner process {record['pid']} is gone")


# ---- the fault of the issue: kill -9 of a real runner ---------------------------------------------

def _wait_for_running_task(store, evolution_id: str, limit: float = 60.0) -> dict:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        tasks = store.list_tasks(evolution_id=evolution_id, statuses=("running",))
        if tasks and tasks[-1]["phase"] == "implement":
            return tasks[-1]
        time.sleep(0.2)
    raise AssertionError(f"no implement task started: {store.get_evolution(evolution_id)}")


def test_kill_9_of_a_running_evolution_then_cleanup(tdev, git_repo, store):
    hang = tdev.shell_agent("hanging_agent", "cat >/dev/null\nsleep 300\n")
    planner = tdev.shell_agent("planner_agent", EMPTY_PLAN_AGENT)
    tdev.use_agents({"plan": [planner], "implement": [hang]})
    started = tdev.run("run_evolution.py", "--target", str(git_repo / "packages" / "agents"), "--cycles", "1",
                       "--focus", "quality", "--force")
    assert started.returncode == 0, started.stderr
    evolution_id = started.stdout.split()[0]
    record = store.get_evolution(evolution_id)
    try:
        _wait_for_running_task(store, evolution_id)
        record = store.get_evolution(evolution_id)
        worktree, scratch = paths.worktrees_dir() / evolution_id, paths.tmp_dir() / evolution_id
        assert worktree.is_dir() and scratch.is_dir()
        (scratch / "notes.txt").write_text("scratch")
        assert check(tdev).returncode == 0
        agents = lifecycle.agent_processes()[evolution_id]
        os.kill(record["pid"], signal.SIGKILL)  # the runner only: its agent lives on

        result = check(tdev)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "CRITICAL" in result.stdout and "process-gone" in result.stdout and evolution_id in result.stdout

        cleaned = tdev.run("cleanup.py", "--evolution", evolution_id, "--verbose")
        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
        for action in ("mark-killed", "terminate", "remove-worktree", "remove"):
            assert action in cleaned.stdout
        after = store.get_evolution(evolution_id)
        assert after["status"] == "killed" and after["error"] == "cleaned up: process gone"
        assert after["finished_at"]
        assert not worktree.exists() and not scratch.exists()
        assert str(worktree) not in gitops.git(git_repo, "worktree", "list")
        assert all(not _alive(agent["pid"]) for agent in agents)
        assert store.check() == "ok"
        assert check(tdev).returncode == 0
        again = tdev.run("cleanup.py", "--evolution", evolution_id)
        assert again.returncode == 0 and "nothing left to clean up" in again.stderr
        analysis = json.loads(tdev.run("analyze_failure.py", "--id", evolution_id, "--json").stdout)
        assert analysis["failure"]["error_class"] == "killed" and analysis["failure"]["phase"] == "implement"
    finally:
        _end_group(record)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _end_group(record: dict | None) -> None:
    """Whatever the test's outcome, leave no runner or agent behind."""
    if record and record.get("pid") and record.get("host") == socket.gethostname():
        try:
            os.killpg(record["pid"], signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def test_a_phase_is_judged_by_the_timeout_its_evolution_started_with(tdev, store, spawn):
    record = running(store, spawn)
    store.update_evolution(record["id"], {"timeout_seconds": 600})  # started with TIMEOUT_SECONDS=600
    twenty_minutes_ago = datetime.now(UTC) - timedelta(minutes=20)
    store.create_task({"id": task_id(twenty_minutes_ago), "evolution_id": record["id"], "cycle": 1,
                       "phase": "implement", "agent": "refactor-agent", "status": "running",
                       "started_at": stamp(twenty_minutes_ago), "trace_id": "0" * 32})
    result = check(tdev)  # the checker's own TIMEOUT_SECONDS is the default 3600
    assert result.returncode == 1, result.stdout + result.stderr
    assert "phase-timeout" in result.stdout and "past TIMEOUT_SECONDS=600" in result.stdout


def test_run_evolution_records_the_timeout_it_starts_with(tdev, git_repo):
    started = tdev.run("run_evolution.py", "--target", str(git_repo / "packages/agents"), "--dry-run", "--monitor",
                       env={"TIMEOUT_SECONDS": "1234"})
    assert started.returncode == 0, started.stdout + started.stderr
    [record] = open_store().list_evolutions()
    assert record["timeout_seconds"] == 1234
