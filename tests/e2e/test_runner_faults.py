"""Under faults (issue 10, items 7, 11, 13): a dead runner whose pid now names another program, a target
whose runner died, a TDEV_HOME that names no folder. What is kept, and what the operator is told."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta

import pytest
from evolution_runs import kill_runner, start_hanging, use_command_agent, wait_for

from lib import paths, procs
from lib.store import open_store
from tests.conftest import ROOT


@pytest.fixture
def bystander(processes):
    """Start unrelated long-running programs: the test asserts that no command ended them."""
    return lambda *argv: processes(list(argv))


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# ---- 7: stop --force kills only a process proven to be the runner ------------------------------------

def test_force_stop_spares_the_program_that_now_has_the_dead_runners_pid(tdev, git_repo, bystander, runners):
    record = start_hanging(tdev, str(git_repo / "packages/agents"), runners)
    assert record["pid_started_at"], "the runner's start time is recorded with its pid"
    kill_runner(record)
    sleeper = bystander("sleep", "300")
    open_store().update_evolution(record["id"], {"pid": sleeper.pid})  # the kernel gave the pid away

    stop = tdev.run("stop_evolution.py", "--id", record["id"], "--force")

    assert stop.returncode == 0, stop.stderr
    assert sleeper.poll() is None, "the unrelated process was signalled"
    after = open_store().get_evolution(record["id"])
    assert after["status"] == "killed" and "the runner was already gone" in after["error"]
    assert f"{record['id']} marked killed: its runner was already gone" in stop.stdout
    assert f"pid {sleeper.pid} is now 'sleep'" in stop.stdout and "no process was signalled" in stop.stdout
    assert f"python scripts/cleanup.py --evolution {record['id']}" in stop.stdout
    assert [task["status"] for task in open_store().list_tasks(record["id"])] == ["failed"]


def test_force_stop_refuses_a_look_alike_that_started_at_another_time(tdev, git_repo, bystander, runners):
    record = start_hanging(tdev, str(git_repo / "packages/agents"), runners)
    kill_runner(record)
    look_alike = bystander(sys.executable, "-c", "import time; time.sleep(300)", "lib.evolution.worker", record["id"])
    an_hour_before = datetime.fromisoformat(wait_for(lambda: procs.start_stamp(look_alike.pid))) - timedelta(hours=1)
    open_store().update_evolution(record["id"], {"pid": look_alike.pid, "pid_started_at": an_hour_before.isoformat()})

    stop = tdev.run("stop_evolution.py", "--id", record["id"], "--force")

    assert stop.returncode == 1
    line = one_error_line(stop)
    assert "looks like the runner but started at" in line and "nothing was signalled" in line
    assert f"ps -o pid,lstart,args -p {look_alike.pid}" in line
    assert look_alike.poll() is None
    assert open_store().get_evolution(record["id"])["status"] == "running"  # not taken for dead either


def test_check_and_cleanup_take_the_pid_of_another_program_for_a_dead_runner(tdev, git_repo, bystander, runners):
    record = start_hanging(tdev, str(git_repo / "packages/agents"), runners)
    kill_runner(record)
    sleeper = bystander("sleep", "300")
    open_store().update_evolution(record["id"], {"pid": sleeper.pid})
    check = tdev.run("check_stuck_processes.py")
    assert check.returncode == 2 and "process-gone" in check.stdout
    cleaned = tdev.run("cleanup.py", "--evolution", record["id"])
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert sleeper.poll() is None
    assert open_store().get_evolution(record["id"])["status"] == "killed"


# ---- 11: a target whose runner died -------------------------------------------------------------------

def test_a_target_whose_runner_died_names_its_cleanup_and_force_takes_it_over(tdev, git_repo, runners):
    target = str(git_repo / "packages/agents")
    dead = start_hanging(tdev, target, runners)
    kill_runner(dead)

    again = tdev.run("run_evolution.py", "--target", target)
    assert again.returncode == 1
    line = one_error_line(again)
    assert f"has evolution {dead['id']} marked running, but its runner is dead" in line
    assert f"python scripts/cleanup.py --evolution {dead['id']}" in line and "already active" not in line
    assert open_store().get_evolution(dead["id"])["status"] == "running"  # without --force nothing changes

    taken = tdev.run("run_evolution.py", "--target", target, "--force")
    assert taken.returncode == 0, taken.stderr
    new_id = taken.stdout.split()[0]
    runners.append(new_id)
    assert new_id != dead["id"] and f"took over {target}: evolution {dead['id']}" in taken.stderr
    old = open_store().get_evolution(dead["id"])
    assert old["status"] == "killed" and old["error"] == "cleaned up: process gone"
    assert not (paths.worktrees_dir() / dead["id"]).exists()

    live = wait_for(lambda: (record := open_store().get_evolution(new_id))["status"] == "running" and record)
    refused = tdev.run("run_evolution.py", "--target", target, "--force")
    assert refused.returncode == 1
    line = one_error_line(refused)
    assert f"already has an active evolution: evolution {new_id} is still running" in line
    assert f"python scripts/stop_evolution.py --id {new_id} --graceful" in line
    assert procs.alive(live["pid"]) and open_store().get_evolution(new_id)["status"] == "running"
    assert tdev.run("stop_evolution.py", "--id", new_id, "--force").returncode == 0


def test_monitor_of_an_evolution_whose_runner_is_killed_ends_and_says_so(tdev, git_repo, runners):
    use_command_agent(tdev, "research", "time.sleep(300)\n")
    monitor = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "run_evolution.py"), "--target",
                                str(git_repo / "packages/agents"), "--monitor"], env=tdev.env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    task = wait_for(lambda: next(iter(open_store().list_tasks(statuses=("running",))), None))
    runners.append(task["evolution_id"])
    kill_runner(open_store().get_evolution(task["evolution_id"]))
    stdout, stderr = monitor.communicate(timeout=60)
    assert monitor.returncode == 1, stderr
    assert stdout.strip().splitlines()[-1].startswith(f"{task['evolution_id']} killed: killed: runner died (runner "
                                                      "process")
    assert open_store().get_evolution(task["evolution_id"])["status"] == "killed"


# ---- 13: TDEV_HOME names no folder ------------------------------------------------------------------------

def test_a_tdev_home_that_names_nothing_fails_every_command_and_creates_nothing(tdev, git_repo, aws):
    missing = tdev.base / "mistyped-home"
    for derived in ("TDEV_HISTORY_DIR", "TDEV_CONFIG_DIR", "TDEV_MCP_CONFIG"):
        del tdev.env[derived]  # everything lives under TDEV_HOME, as on an operator's machine
    tdev.env["TDEV_HOME"] = str(missing)
    evolution = "evo-20240115100000-abcdef"
    commands = [
        ("run_evolution.py", ["--target", str(git_repo / "packages/agents")], 1),
        ("run_evolution.py", ["--monitor", "--dry-run"], 1),
        ("stop_evolution.py", ["--id", evolution, "--force"], 1),
        ("show_active_evolutions.py", [], 1),
        ("show_evolution_history.py", ["--since", "7d", "--json"], 1),
        ("analyze_failure.py", ["--id", evolution], 1),
        ("cleanup.py", ["--temp"], 1),
        ("gc.py", ["--dry-run"], 1),
        ("backup.py", ["--daily"], 1),
        ("restore.py", ["--date", "today", "--confirm"], 1),
        ("adjust_gates.py", ["--metric", "coverage", "--threshold", "70"], 1),
        ("restart_mcp.py", ["--all"], 1),
        ("agent_status.py", ["--all"], 1),
        ("show_costs.py", ["--date", "today"], 1),
        ("rotate_secrets.py", ["--all", "--dry-run"], 1),
        ("health_check.py", [], 3),
        ("check_stuck_processes.py", [], 3),
        ("pre_evolution_check.py", ["--target", str(git_repo / "packages/agents")], 3),
        ("verify_restore.py", [], 3),
        ("-m mcp.test", ["all"], 3),
    ]
    for script, args, code in commands:
        result = tdev.run(script, *args)
        assert result.returncode == code, (script, result.stdout, result.stderr)
        line = one_error_line(result)
        assert line.startswith(f"error: TDEV_HOME={missing} names a folder that does not exist"), (script, line)
        assert "python scripts/init_evolution.py" in line
        assert not missing.exists(), f"{script} created {missing}"

    init = tdev.run("init_evolution.py")
    assert init.returncode == 0, init.stderr
    assert f"created {missing} (TDEV_HOME)" in init.stdout
    assert (missing / "config" / "settings.yaml").is_file() and (missing / "evolution_history" / "state.db").is_file()
    assert tdev.run("show_active_evolutions.py").returncode == 0
