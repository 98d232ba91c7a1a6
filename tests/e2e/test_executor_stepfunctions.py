"""End to end: the stepfunctions executor (DESIGN §10) as an operator runs it - setup_executor.py, then
run_evolution.py --executor stepfunctions (one target, or a targets file), show_active_evolutions.py,
stop_evolution.py, check_stuck_processes.py and health_check.py - against the moto server with Step Functions
execution on, its ECS runTask.sync integration (moto_ecs_sync.py) and the Fargate stand-in that runs each task's
command on this machine against the same moto DynamoDB table."""

from __future__ import annotations

import json
import os
import signal
from datetime import datetime

import boto3
import pytest
import yaml
from evolution_runs import start_hanging, use_command_agent, wait_for
from fargate_standin import FargateStandIn, prepare, restore

from lib import procs
from lib.evolution import lifecycle, worker
from lib.store import FINAL, open_store
from tests.conftest import git

TABLE = "tdev-team"
CLUSTER = "t-developer"


@pytest.fixture
def executor(tdev, aws, monkeypatch):
    """moto with Step Functions execution on and ECS tasks that stay RUNNING until stopped; the cluster, a task
    definition, a subnet and security group; settings `executor:` naming them; the state store on DynamoDB; the
    state machine made by setup_executor.py. Yields a function that starts the Fargate stand-in."""
    endpoint = aws["endpoint"]
    monkeypatch.setenv("MOTO_PORT", endpoint.rsplit(":", 1)[1])  # moto's interpreter calls ECS on this port
    made = prepare(endpoint, CLUSTER)
    for key, value in {"TDEV_STATE_BACKEND": "dynamodb", "TDEV_STATE_TABLE": TABLE}.items():
        tdev.env[key] = value
        monkeypatch.setenv(key, value)
    open_store(create=True).close()
    settings = yaml.safe_load((tdev.config_dir / "settings.yaml").read_text())
    settings["executor"] = {"subnets": [made["subnet"]], "security_groups": [made["security_group"]],
                            "max_concurrent": 5, "role_arn": "arn:aws:iam::123456789012:role/t-developer-executor"}
    tdev.write_config("settings", yaml.safe_dump(settings))
    setup = tdev.run("setup_executor.py")
    assert setup.returncode == 0 and "created" in setup.stdout, setup.stderr
    machine = setup.stdout.strip().rsplit(" ", 1)[-1]
    standins = []

    def start(crash: tuple[str, ...] = ()) -> FargateStandIn:
        standin = FargateStandIn(tdev.env, CLUSTER, machine, tdev.base, crash=crash).start()
        standins.append(standin)
        return standin

    yield start
    for standin in standins:
        standin.stop()
    restore(endpoint)


def sfn():
    return boto3.client("stepfunctions", region_name="us-east-1")


def record_when(evolution_id: str, condition, timeout: float = 120) -> dict:
    """The evolution's record once condition(record) holds."""
    def ready():
        record = open_store().get_evolution(evolution_id)
        return record if condition(record) else None
    return wait_for(ready, timeout)


def final(evolution_id: str) -> dict:
    return record_when(evolution_id, lambda r: r["status"] in FINAL, 240)


def execution_status(record: dict) -> str:
    return sfn().describe_execution(executionArn=record["execution_arn"])["status"]


def test_one_evolution_end_to_end_through_the_state_machine(tdev, git_repo, github, executor):
    standin = executor()
    result = tdev.run("run_evolution.py", "--executor", "stepfunctions", "--target", str(git_repo / "packages/agents"),
                      "--focus", "quality", "--monitor", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    record = open_store().list_evolutions()[0]
    assert record["status"] == "succeeded" and record["executor"] == "stepfunctions"
    assert record["execution_arn"].endswith(f":execution:t-developer-evolution:{record['id']}")
    assert record["base_sha"] == git(git_repo, "rev-parse", "HEAD") and record["target_path"] == "packages/agents"
    assert f"{record['id']} [running]" in result.stdout and f"{record['id']} succeeded" in result.stdout
    assert "INFO [cycle 0/1] evolution started" in result.stdout  # from the task's log stream
    assert "INFO [cycle 1/1 gate] evolution succeeded" in result.stdout
    assert wait_for(lambda: execution_status(record) == "SUCCEEDED")
    [run] = standin.runs.values()
    assert run["evolution_id"] == record["id"] and run["exit_code"] == 0
    assert (run["home"] / "history" / "clones" / record["id"]).is_dir()  # a fresh clone, not the operator's checkout
    assert record["pr_number"] == 1 and github.pulls[1]["head"]["ref"].startswith("tdev/auto/")
    assert git(git_repo, "status", "--porcelain") == ""


def test_twelve_targets_never_more_than_five_at_once(tdev, git_repo, github, executor):
    names = [f"p{n:02d}" for n in range(1, 13)]
    for name in names:
        package = git_repo / "packages" / name
        package.mkdir()
        (package / "__init__.py").write_text("import os\n\n\ndef value(a,b):\n    return a+b\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-m", "twelve packages")
    git(git_repo, "push", "origin", "main")
    targets = tdev.base / "targets.txt"
    targets.write_text("# one per line\n" + "".join(f"{git_repo}:packages/{name}\n" for name in names))
    executor()
    result = tdev.run("run_evolution.py", "--executor", "stepfunctions", "--targets-file", str(targets),
                      "--focus", "quality", "--dry-run", "--force", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 12
    assert sum("started (arn:aws:states:" in line for line in lines) == 5
    assert sum("waiting for a free slot" in line for line in lines) == 7
    active = json.loads(tdev.run("show_active_evolutions.py", "--json").stdout)
    assert len(active) >= 1 and all(r["executor"] == "stepfunctions" for r in active)
    ids = [line.split()[0] for line in lines]
    records = [final(i) for i in ids]
    assert [r["status"] for r in records] == ["succeeded"] * 12, [r["error"] for r in records]
    assert len({r["target"] for r in records}) == 12
    # from the store alone: at no moment were more than five runners between their start and their end
    events = sorted([(datetime.fromisoformat(r["started_at"]), 1) for r in records]
                    + [(datetime.fromisoformat(r["finished_at"]), -1) for r in records])  # an end sorts first
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    assert 1 <= peak <= 5
    wait_for(lambda: all(execution_status(r) == "SUCCEEDED" for r in records), 120)


def test_graceful_stop_through_the_store(tdev, git_repo, executor):
    executor()
    use_command_agent(tdev, "research", """
        time.sleep(3)
        print(json.dumps({"status": "ok", "output": {"summary": "slow"}, "cost_usd": 0}))
    """)
    started = tdev.run("run_evolution.py", "--executor", "stepfunctions", "--target",
                       str(git_repo / "packages/agents"))
    assert started.returncode == 0, started.stderr
    evolution_id = started.stdout.split()[0]
    wait_for(lambda: open_store().get_evolution(evolution_id)["status"] == "running", 120)
    stop = tdev.run("stop_evolution.py", "--id", evolution_id, "--graceful", "--timeout", "120")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    record = open_store().get_evolution(evolution_id)
    assert record["status"] == "stopped" and "graceful stop" in record["error"]
    assert wait_for(lambda: execution_status(record) in ("FAILED", "SUCCEEDED"))


def test_force_stop_calls_stop_execution_and_the_worker_ends_killed(tdev, git_repo, executor):
    standin = executor()
    use_command_agent(tdev, "research", "time.sleep(120)\n")
    started = tdev.run("run_evolution.py", "--executor", "stepfunctions", "--target",
                       str(git_repo / "packages/agents"))
    evolution_id = started.stdout.split()[0]
    wait_for(lambda: open_store().list_tasks(evolution_id=evolution_id, statuses=("running",)), 120)
    stop = tdev.run("stop_evolution.py", "--id", evolution_id, "--force")
    assert stop.returncode == 0, stop.stderr
    assert "execution stopped" in stop.stdout
    record = open_store().get_evolution(evolution_id)
    assert record["status"] == "killed" and "StopExecution" in record["error"]
    wait_for(lambda: execution_status(record) == "ABORTED", 60)  # moto's execution thread settles it
    # the stand-in sends SIGTERM as ECS does; the worker ends within the grace, never left running
    run = wait_for(lambda: next((r for r in standin.runs.values() if r["ended"]), None), 60)
    assert run["exit_code"] in (1, 143)
    assert open_store().get_evolution(evolution_id)["status"] == "killed"
    again = tdev.run("stop_evolution.py", "--id", evolution_id, "--force")
    assert again.returncode == 0 and "already killed" in again.stdout


def test_failed_execution_of_a_running_evolution_is_critical(tdev, git_repo, executor):
    use_command_agent(tdev, "research", "time.sleep(120)\n")
    started = tdev.run("run_evolution.py", "--executor", "stepfunctions", "--target",
                       str(git_repo / "packages/agents"))
    evolution_id = started.stdout.split()[0]
    executor(crash=(evolution_id,))  # its runner is SIGKILLed once it runs: an OOM kill, exit code 137
    record = record_when(evolution_id, lambda r: r.get("execution_arn"))
    wait_for(lambda: execution_status(record) == "FAILED", 120)
    assert open_store().get_evolution(evolution_id)["status"] == "running"
    check = tdev.run("check_stuck_processes.py")
    assert check.returncode == 2, check.stdout + check.stderr
    fix = f"python scripts/stop_evolution.py --id {evolution_id} --force"
    assert "execution is FAILED" in check.stdout and fix in check.stdout
    health = tdev.run("health_check.py", "--json")
    assert json.loads(health.stdout)["status"] == "critical"
    active = tdev.run("show_active_evolutions.py")
    assert "stepfunctions FAILED" in active.stdout and fix in active.stderr
    assert tdev.run("stop_evolution.py", "--id", evolution_id, "--force").returncode == 0
    assert open_store().get_evolution(evolution_id)["status"] == "killed"
    assert tdev.run("check_stuck_processes.py").returncode == 0


def test_sqlite_store_is_refused(tdev, git_repo):
    result = tdev.run("run_evolution.py", "--executor", "stepfunctions", "--target", str(git_repo / "packages/agents"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "DynamoDB" in lines[0]
    assert "TDEV_STATE_BACKEND=dynamodb" in lines[0]
    assert not (tdev.history / "state.db").exists()


def test_without_the_state_machine_nothing_is_created(tdev, git_repo, aws):
    env = {"TDEV_STATE_BACKEND": "dynamodb", "TDEV_STATE_TABLE": TABLE}
    assert tdev.run("init_evolution.py", env=env).returncode == 0
    result = tdev.run("run_evolution.py", "--executor", "stepfunctions", "--target",
                      str(git_repo / "packages/agents"), env=env)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "state machine 't-developer-evolution' does not exist" in result.stderr
    assert "python scripts/setup_executor.py" in result.stderr
    assert tdev.run("show_active_evolutions.py", "--json", env=env).stdout.strip() == "[]"


def test_setup_executor_is_idempotent_and_updates_a_changed_definition(tdev, executor):
    again = tdev.run("setup_executor.py")
    assert again.returncode == 0 and "state machine t-developer-evolution unchanged" in again.stdout, again.stderr
    settings = yaml.safe_load((tdev.config_dir / "settings.yaml").read_text())
    settings["executor"]["security_groups"] = []
    tdev.write_config("settings", yaml.safe_dump(settings))
    changed = tdev.run("setup_executor.py")
    assert changed.returncode == 0 and "updated" in changed.stdout, changed.stderr
    [machine] = sfn().list_state_machines()["stateMachines"]
    document = json.loads(sfn().describe_state_machine(stateMachineArn=machine["stateMachineArn"])["definition"])
    network = document["States"]["Run the runner"]["Parameters"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert "SecurityGroups" not in network
    audit = [json.loads(line) for line in (tdev.history / "audit.log").read_text().splitlines()]
    assert [line["result"] for line in audit if "setup_executor" in line["command"]] == [
        "created", "unchanged", "updated"]


def test_setup_executor_dry_run_prints_the_definition_and_missing_resources_are_named(tdev, aws):
    dry = tdev.run("setup_executor.py", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["States"]["Run the runner"]["Resource"] == "arn:aws:states:::ecs:runTask.sync"
    settings = yaml.safe_load((tdev.config_dir / "settings.yaml").read_text())
    settings["executor"] = {"subnets": ["subnet-0missing"], "role_arn": "arn:aws:iam::123456789012:role/x"}
    tdev.write_config("settings", yaml.safe_dump(settings))
    result = tdev.run("setup_executor.py")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines) and len(lines) == 3, result.stderr
    assert "ECS cluster 't-developer'" in lines[0] and "task definition 't-developer-runner'" in lines[1]
    assert "subnet 'subnet-0missing'" in lines[2] and "Traceback" not in result.stderr
    assert sfn().list_state_machines()["stateMachines"] == []


def test_targets_file_with_the_local_executor_queues_beyond_the_limit(tdev, git_repo):
    for name in ("a", "b", "c"):
        (git_repo / "packages" / name).mkdir()
        (git_repo / "packages" / name / "__init__.py").write_text("import os\n\n\ndef value(a,b):\n    return a+b\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-m", "three packages")
    settings = yaml.safe_load((tdev.config_dir / "settings.yaml").read_text())
    settings["executor"]["max_concurrent"] = 1
    tdev.write_config("settings", yaml.safe_dump(settings))
    targets = tdev.base / "targets.txt"
    targets.write_text("packages/a\npackages/b\npackages/c\n")
    result = tdev.run("run_evolution.py", "--targets-file", str(targets), "--dry-run", "--monitor", cwd=git_repo,
                      timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()[:3]
    ids = [line.split()[0] for line in lines]
    assert sum("started (pid" in line for line in lines) == 1
    assert sum("waiting for a free slot" in line for line in lines) == 2
    records = sorted((open_store().get_evolution(i) for i in ids), key=lambda r: (r["started_at"], r["finished_at"]))
    assert [r["status"] for r in records] == ["succeeded"] * 3 and all(r["executor"] == "local" for r in records)
    for earlier, later in zip(records, records[1:], strict=False):
        assert earlier["finished_at"] <= later["started_at"]  # one at a time, each started as the one before ended
    again = tdev.run("run_evolution.py", "--targets-file", str(tdev.base / "missing.txt"))
    assert again.returncode == 2 and again.stderr.startswith("error: ")


def test_sigterm_mid_phase_ends_the_worker_killed_within_the_grace(tdev, git_repo, runners):
    """What ECS's StopTask does to the container (SIGTERM, SIGKILL 30 s later), on a local worker: a phase that
    does not end within the grace is cut short, the record says killed, the process is gone."""
    record = start_hanging(tdev, str(git_repo / "packages/agents"), runners)
    os.kill(record["pid"], signal.SIGTERM)
    ended = record_when(record["id"], lambda r: r["status"] in FINAL, worker.SIGTERM_GRACE_SECONDS + 30)
    assert ended["status"] == "killed" and "SIGTERM" in ended["error"]
    wait_for(lambda: not procs.alive(record["pid"]), 30)
    for process in lifecycle.agent_processes().get(record["id"], []):  # the hanging agent, left in its own session
        os.kill(process["pid"], signal.SIGKILL)
