"""End to end: run_evolution.py, stop_evolution.py, show_active_evolutions.py as an operator runs them,
against real git repositories (a bare origin), the GitHub stand-in and command agents."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys

import pytest
from evolution_runs import use_command_agent, wait_for

from lib import procs
from lib.evolution import lifecycle
from lib.store import open_store
from tests.conftest import PHASE_AGENTS, git


def only_evolution(tdev) -> dict:
    records = open_store().list_evolutions()
    assert len(records) == 1
    return records[0]


def test_dry_run_with_monitor_leaves_checkout_untouched(tdev, git_repo):
    before = (git_repo / "packages/agents/sample.py").read_text()
    result = tdev.run("run_evolution.py", "--target", str(git_repo / "packages/agents"), "--cycles", "1",
                      "--focus", "quality", "--monitor", "--dry-run")
    assert result.returncode == 0, result.stderr
    record = only_evolution(tdev)
    assert record["status"] == "succeeded" and record["dry_run"] is True
    assert record["metrics_before"]["lint"] > 0
    assert record["metrics_after"]["lint"] < record["metrics_before"]["lint"]
    assert "dry run" in result.stdout and record["id"] in result.stdout
    assert (git_repo / "packages/agents/sample.py").read_text() == before
    assert git(git_repo, "status", "--porcelain") == ""
    assert git(git_repo, "branch", "--list", "tdev/auto/*") == ""
    assert not (tdev.history / "worktrees" / record["id"]).exists()
    tasks = open_store().list_tasks(record["id"])
    assert [t["phase"] for t in tasks] == ["research", "plan", "implement", "evaluate"]
    assert all(t["status"] == "succeeded" and t["trace_id"] for t in tasks)
    spans = sorted(s["name"] for s in open_store().list_spans(tasks[0]["trace_id"]))
    assert spans == sorted([f"evolution {record['id']}", "cycle 1", "research research-agent", "plan planner-agent",
                            "implement refactor-agent", "evaluate evaluator-agent", "measure before", "judge", "gate",
                            "commit", "pull request"])  # the runner's own steps are spans too
    for task in tasks:
        artifact = json.loads((tdev.history / record["id"] / "tasks" / f"{task['id']}.json").read_text())
        assert artifact["input"]["phase"] == task["phase"]
    log = (tdev.history / "current.log").read_text()
    assert record["id"] in log and "evolution succeeded" in log


def test_passing_cycle_commits_pushes_and_opens_labelled_pr(tdev, git_repo, github):
    result = tdev.run("run_evolution.py", "--target", str(git_repo / "packages/agents"), "--cycles", "1",
                      "--focus", "quality", "--monitor")
    assert result.returncode == 0, result.stdout + result.stderr
    record = only_evolution(tdev)
    assert record["status"] == "succeeded" and record["pr_number"] == 1
    branch = git(git_repo, "branch", "--list", "tdev/auto/*", "--format=%(refname:short)")
    assert branch.startswith("tdev/auto/") and branch.endswith("-quality-" + record["id"][-6:])
    origin = git_repo.parent / "origin.git"
    assert git(origin, "branch", "--list", branch, "--format=%(refname:short)") == branch
    message = git(git_repo, "log", "-1", "--format=%B", branch)
    assert "Metrics-Impact: " in message and f"Evolution-Context: {record['id']}" in message
    pull = github.pulls[1]
    assert pull["head"]["ref"] == branch and "| Metric | Before | After |" in pull["body"]
    assert [label["name"] for label in pull["labels"]] == ["auto-evolution"]
    assert git(git_repo, "status", "--porcelain") == ""  # the operator's checkout is untouched
    headers = [h for m, p, b, h in github.requests if m == "POST"]
    assert all(github.token not in json.dumps(b) for m, p, b, h in github.requests)
    assert headers


def test_without_github_the_branch_is_pushed_and_no_pr(tdev, git_repo):
    result = tdev.run("run_evolution.py", "--target", str(git_repo / "packages/agents"), "--monitor")
    assert result.returncode == 0, result.stderr
    assert "GitHub not configured" in result.stdout
    assert only_evolution(tdev)["pr_number"] is None


def test_detached_start_prints_id_and_log(tdev, git_repo):
    result = tdev.run("run_evolution.py", "--target", str(git_repo / "packages/agents"), "--dry-run")
    assert result.returncode == 0, result.stderr
    evo_id = result.stdout.split()[0]
    assert evo_id.startswith("evo-") and "evolution.log" in result.stdout
    record = lifecycle.wait_final(open_store(), evo_id, 60)
    assert record["status"] == "succeeded"


def test_environment_defaults_and_max_cycles(tdev, git_repo):
    env = {"EVOLUTION_TARGET": str(git_repo / "packages/agents"), "EVOLUTION_CYCLES": "3",
           "EVOLUTION_FOCUS": "lint", "MAX_CYCLES": "1", "EVOLUTION_DRY_RUN": "true"}
    result = tdev.run("run_evolution.py", "--monitor", env=env)
    assert result.returncode == 0, result.stderr
    record = only_evolution(tdev)
    assert (record["cycles"], record["focus"], record["dry_run"]) == (1, "lint", True)


def test_graceful_stop_at_phase_boundary(tdev, git_repo):
    use_command_agent(tdev, "research", """
        time.sleep(3)
        print(json.dumps({"status": "ok", "output": {"metrics": {}, "per_file": {}}, "cost_usd": 0}))
    """)
    started = tdev.run("run_evolution.py", "--target", str(git_repo / "packages/agents"))
    evo_id = started.stdout.split()[0]
    wait_for(lambda: open_store().get_evolution(evo_id)["status"] == "running")
    active = tdev.run("show_active_evolutions.py", "--json")
    assert [e["id"] for e in json.loads(active.stdout)] == [evo_id]
    stop = tdev.run("stop_evolution.py", "--id", evo_id, "--graceful", "--timeout", "60")
    assert stop.returncode == 0, stop.stderr
    record = open_store().get_evolution(evo_id)
    assert record["status"] == "stopped" and "before plan" in record["error"]
    again = tdev.run("stop_evolution.py", "--id", evo_id, "--graceful")
    assert again.returncode == 0 and "already stopped" in again.stdout


def test_graceful_stop_times_out_and_the_request_stays(tdev, git_repo):
    use_command_agent(tdev, "research", "time.sleep(30)\n")
    evo_id = tdev.run("run_evolution.py", "--target", str(git_repo / "packages/agents")).stdout.split()[0]
    wait_for(lambda: open_store().get_evolution(evo_id)["status"] == "running")
    stop = tdev.run("stop_evolution.py", "--id", evo_id, "--graceful", "--timeout", "1")
    assert stop.returncode == 1 and "--force" in stop.stdout
    assert open_store().get_evolution(evo_id)["status"] == "stopping"
    assert tdev.run("stop_evolution.py", "--id", evo_id, "--force").returncode == 0


def test_force_stop_ends_the_whole_process_group(tdev, git_repo):
    marker = tdev.base / "agent.pid"
    use_command_agent(tdev, "research", f"""
        open({str(marker)!r}, "w").write(str(os.getpid()))
        time.sleep(120)
    """)
    evo_id = tdev.run("run_evolution.py", "--target", str(git_repo / "packages/agents")).stdout.split()[0]
    agent_pid = int(wait_for(lambda: marker.exists() and marker.read_text()))
    runner_pid = open_store().get_evolution(evo_id)["pid"]
    stop = tdev.run("stop_evolution.py", "--id", evo_id, "--force")
    assert stop.returncode == 0, stop.stderr
    assert open_store().get_evolution(evo_id)["status"] == "killed"
    wait_for(lambda: not procs.alive(agent_pid) and not procs.alive(runner_pid), 10)


def test_second_evolution_on_one_target_is_refused(tdev, git_repo):
    use_command_agent(tdev, "research", "time.sleep(30)\n")
    target = str(git_repo / "packages/agents")
    evo_id = tdev.run("run_evolution.py", "--target", target).stdout.split()[0]
    second = tdev.run("run_evolution.py", "--target", target, "--force")
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1].startswith("error: ")
    assert evo_id in second.stderr
    tdev.run("stop_evolution.py", "--id", evo_id, "--force")


@pytest.mark.parametrize("body, error_class", [
    ("sys.stderr.write('agent exploded\\n'); sys.exit(3)\n", "exit-code:"),
    ("print('this is not json')\n", "bad-output:"),
    ("time.sleep(30)\n", "timeout:"),
    ("print(json.dumps({'status': 'error', 'error': 'model refused'}))\n", "agent-error:"),
])
def test_failing_command_agent_fails_task_and_evolution(tdev, git_repo, body, error_class):
    use_command_agent(tdev, "research", body)
    result = tdev.run("run_evolution.py", "--target", str(git_repo / "packages/agents"), "--monitor",
                      env={"TIMEOUT_SECONDS": "2"})
    assert result.returncode == 1
    record = only_evolution(tdev)
    assert record["status"] == "failed" and error_class in record["error"]
    task = open_store().list_tasks(record["id"])[0]
    assert task["status"] == "failed" and task["error"].startswith(error_class)


def test_per_cycle_cost_limit_stops_the_cycle(tdev, git_repo):
    (tdev.config_dir / "cost_limits.yaml").write_text("daily_usd: 100\nper_cycle_usd: 1\n")
    use_command_agent(tdev, "research", """
        print(json.dumps({"status": "ok", "output": {"summary": "looked around"}, "cost_usd": 2.5}))
    """)
    result = tdev.run("run_evolution.py", "--target", str(git_repo / "packages/agents"), "--monitor")
    assert result.returncode == 1
    record = only_evolution(tdev)
    assert record["error"].startswith("cost-limit:") and record["cost_usd"] == 2.5


@pytest.mark.parametrize("args, code, words", [
    (["--focus", "vibes"], 2, "unknown focus"),
    (["--cycles", "0"], 2, "--cycles"),
    (["--target", "/nonexistent/folder"], 1, "does not exist"),
])
def test_bad_input_one_error_line(tdev, git_repo, args, code, words):
    result = tdev.run("run_evolution.py", "--target", str(git_repo / "packages/agents"), *args)
    assert result.returncode == code
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and words in result.stderr
    assert "Traceback" not in result.stderr


def test_target_outside_git_and_broken_yaml(tdev, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    result = tdev.run("run_evolution.py", "--target", str(plain))
    assert result.returncode == 1 and "not in a git repository" in result.stderr
    tdev.write_config("settings", "evolution: [unclosed\n")
    result = tdev.run("run_evolution.py")  # the default target comes from settings.yaml
    assert result.returncode == 1 and "settings.yaml" in result.stderr and "Traceback" not in result.stderr


def test_unknown_evolution_and_kill_minus_nine_keeps_store_sound(tdev, git_repo):
    assert tdev.run("stop_evolution.py", "--id", "evo-20000101000000-000000", "--force").returncode == 1
    use_command_agent(tdev, "research", "time.sleep(60)\n")
    evo_id = tdev.run("run_evolution.py", "--target", str(git_repo / "packages/agents")).stdout.split()[0]
    wait_for(lambda: open_store().get_evolution(evo_id)["status"] == "running")
    os.killpg(open_store().get_evolution(evo_id)["pid"], signal.SIGKILL)
    db = sqlite3.connect(tdev.history / "state.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert open_store().get_evolution(evo_id)["status"] == "running"  # until check/cleanup notice it


def add_tests(repo) -> None:
    """A test of the sample package, committed: the target's tests are found and runnable."""
    (repo / "packages/agents/test_sample.py").write_text("def test_true():\n    assert True\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "tests")


def test_pre_evolution_check_and_health_check(tdev, git_repo):
    assert tdev.run("init_evolution.py").returncode == 0
    check = tdev.run("pre_evolution_check.py", "--target", str(git_repo / "packages/agents"), "--json")
    document = json.loads(check.stdout)
    names = [c["name"] for c in document["checks"]]
    assert names == ["environment_ready", "agents_take_phases", "agents_fit_the_focus", "resources_available",
                     "no_active_cycles", "metrics_baseline", "tests_runnable", "safety_limits_set"]
    assert check.returncode == 1 and document["status"] == "warning"  # no cost limits yet
    tests = next(c for c in document["checks"] if c["name"] == "tests_runnable")
    assert tests["status"] == "warning" and str(git_repo / "packages/agents") in tests["summary"]  # no tests
    (tdev.config_dir / "cost_limits.yaml").write_text("daily_usd: 100\nper_cycle_usd: 10\n")
    add_tests(git_repo)
    assert tdev.run("pre_evolution_check.py", "--target", str(git_repo / "packages/agents")).returncode == 0
    missing = tdev.run("pre_evolution_check.py", "--target", "/nonexistent")
    assert missing.returncode == 2 and "CRITICAL" in missing.stdout
    health = tdev.run("health_check.py", "--json")
    report = json.loads(health.stdout)
    assert report["status"] in ("ok", "warning", "critical", "unknown")
    assert {"name", "area", "status", "summary", "duration_ms"} <= set(report["checks"][0])


def test_ctrl_c_under_monitor_asks_for_a_graceful_stop(tdev, git_repo):
    import subprocess

    from tests.conftest import ROOT

    use_command_agent(tdev, "research", """
        time.sleep(3)
        print(json.dumps({"status": "ok", "output": {"metrics": {}, "per_file": {}}, "cost_usd": 0}))
    """)
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "run_evolution.py"), "--target", str(git_repo / "packages/agents"),
         "--monitor"], env=tdev.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: open_store().list_evolutions() and open_store().list_evolutions()[0]["status"] == "running")
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "graceful stop requested" in stderr
    record = only_evolution(tdev)
    assert record["status"] == "stopped" and record["id"] in stdout


def test_pre_evolution_check_warns_when_no_agent_can_change_code_for_the_focus(tdev, git_repo):
    (tdev.config_dir / "cost_limits.yaml").write_text("daily_usd: 100\nper_cycle_usd: 10\n")
    target = str(git_repo / "packages/agents")
    add_tests(git_repo)
    docs = tdev.run("pre_evolution_check.py", "--target", target, "--focus", "docs", "--json")
    row = next(c for c in json.loads(docs.stdout)["checks"] if c["name"] == "agents_fit_the_focus")
    assert docs.returncode == 1 and row["status"] == "warning"
    assert "focus docs" in row["summary"] and "runtime: bedrock" in row["summary"]
    assert tdev.run("pre_evolution_check.py", "--target", target, "--focus", "quality").returncode == 0
    tdev.write_config("agents", "agents:\n" + "".join(
        f"  - {{name: {name}, phase: {phase}, runtime: bedrock, model_id: m}}\n"
        for phase, name in PHASE_AGENTS.items()))
    priced = tdev.run("pre_evolution_check.py", "--target", target, "--focus", "docs", "--json")
    row = next(c for c in json.loads(priced.stdout)["checks"] if c["name"] == "agents_fit_the_focus")
    assert row["status"] == "warning" and "no price_per_1k" in row["summary"] and "focus docs" not in row["summary"]


def test_pre_evolution_check_warns_that_local_candidates_would_be_alike(tdev, git_repo):
    (tdev.config_dir / "cost_limits.yaml").write_text("daily_usd: 100\nper_cycle_usd: 10\n")
    target = str(git_repo / "packages/agents")
    add_tests(git_repo)
    tdev.write_config("settings", "evolution:\n  candidates: 3\n")
    alike = tdev.run("pre_evolution_check.py", "--target", target, "--json")
    row = next(c for c in json.loads(alike.stdout)["checks"] if c["name"] == "agents_fit_the_focus")
    assert alike.returncode == 1 and row["status"] == "warning"
    assert "evolution.candidates is 3" in row["summary"] and "will be alike" in row["summary"]
    tdev.write_config("settings", "evolution:\n  candidates: 1\n")
    assert tdev.run("pre_evolution_check.py", "--target", target).returncode == 0


def test_a_safety_check_refused_under_force_does_not_advise_force(tdev, git_repo):
    tdev.write_config("agents", "agents:\n  - {name: research-agent, phase: research, runtime: nonsense}\n")
    refused = tdev.run("run_evolution.py", "--target", str(git_repo / "packages/agents"), "--cycles", "1",
                       "--force", "--dry-run")
    assert refused.returncode == 1, refused
    error = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "pre-evolution checks failed: environment_ready" in error[0], refused.stderr
    assert "pass --force" not in error[0] and "--force skips only the checks that are not about safety" in error[0]
