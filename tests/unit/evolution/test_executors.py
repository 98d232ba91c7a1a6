"""The queue of the executors (DESIGN §10): at most executor.max_concurrent dispatched, the oldest waiting one
started first, never one evolution twice, on the DynamoDB store and Step Functions of moto (executions are
recorded, not run); the executor choice; the targets file."""

from __future__ import annotations

import threading

import pytest
import yaml
from aws_helpers import client

from lib import config
from lib.errors import ConfigError, UsageError
from lib.evolution import executors, stuck
from lib.ops.executor import read_targets
from lib.store import open_store
from tests.conftest import git


@pytest.fixture
def queue(tdev, aws, monkeypatch):
    """A DynamoDB store, the state machine in moto, max_concurrent 5."""
    monkeypatch.setenv("TDEV_STATE_BACKEND", "dynamodb")
    monkeypatch.setenv("TDEV_STATE_TABLE", "tdev-queue")
    settings = yaml.safe_load((tdev.config_dir / "settings.yaml").read_text())
    settings["executor"]["max_concurrent"] = 5
    tdev.write_config("settings", yaml.safe_dump(settings))
    config.settings.cache_clear()
    client("stepfunctions").create_state_machine(
        name="t-developer-evolution", roleArn="arn:aws:iam::123456789012:role/x",
        definition='{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}')
    store = open_store(create=True)
    yield store
    store.close()


def waiting_record(store, number: int) -> dict:
    return store.create_evolution({
        "id": f"evo-2026010100000{number:02d}-00000{number % 10}", "target": f"/repo/p{number:02d}",
        "focus": "quality", "cycles": 1, "status": "pending", "started_at": f"2026-01-01T00:00:{number:02d}+00:00",
        "executor": "stepfunctions", "dry_run": True})


def executions() -> list[str]:
    machine = client("stepfunctions").list_state_machines()["stateMachines"][0]["stateMachineArn"]
    return [e["name"] for e in client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]]


def test_fill_starts_the_oldest_into_the_free_slots_and_hands_slots_on(queue):
    records = [waiting_record(queue, n) for n in range(1, 8)]
    started = executors.fill(queue)
    assert [evolution_id for evolution_id, _ in started] == [r["id"] for r in records[:5]]
    assert all(arn.endswith(f":execution:t-developer-evolution:{i}") for i, arn in started)
    assert [r["id"] for r in executors.waiting(queue)] == [r["id"] for r in records[5:]]
    assert executors.fill(queue) == []  # no slot free
    for record in records[:2]:
        queue.update_evolution(record["id"], {"status": "succeeded", "finished_at": "2026-01-01T00:01:00+00:00"})
    assert [i for i, _ in executors.fill(queue)] == [r["id"] for r in records[5:7]]
    assert sorted(executions()) == sorted(r["id"] for r in records)


def test_fillers_racing_never_start_one_evolution_twice_nor_exceed_the_limit(queue):
    records = [waiting_record(queue, n) for n in range(1, 9)]
    results, errors = [], []

    def filler():
        store = open_store()
        try:
            results.extend(executors.fill(store))
        except Exception as failure:  # the assertion below names it
            errors.append(failure)
        finally:
            store.close()

    threads = [threading.Thread(target=filler) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    started = [i for i, _ in results]
    assert sorted(started) == sorted(r["id"] for r in records[:5]) and len(set(started)) == 5
    assert sorted(executions()) == sorted(started)
    assert len(executors.running(queue)) == 5


def test_a_stopped_waiting_evolution_is_passed_over(queue):
    first, second = waiting_record(queue, 1), waiting_record(queue, 2)
    queue.update_evolution(first["id"], {"status": "stopped", "finished_at": "2026-01-01T00:01:00+00:00"})
    assert [i for i, _ in executors.fill(queue)] == [second["id"]]


def test_waiting_records_are_not_stuck_and_a_dispatched_one_is_judged_by_its_execution(queue):
    records = [waiting_record(queue, n) for n in range(1, 3)]
    assert stuck.scan(queue)["findings"] == []
    executors.fill(queue)
    machine = client("stepfunctions").list_state_machines()["stateMachines"][0]["stateMachineArn"]
    client("stepfunctions").stop_execution(executionArn=f"{machine.replace('stateMachine', 'execution')}:"
                                                         f"{records[0]['id']}")
    findings = stuck.scan(queue)["findings"]
    assert [(f["evolution_id"], f["kind"], f["status"]) for f in findings] == [
        (records[0]["id"], "execution-ended", "critical")]
    assert f"python scripts/stop_evolution.py --id {records[0]['id']} --force" in findings[0]["summary"]


def test_stepfunctions_needs_dynamodb_and_the_executor_must_be_known(tdev):
    with pytest.raises(ConfigError) as refused:
        executors.choose("stepfunctions")
    assert "DynamoDB" in refused.value.message and "TDEV_STATE_BACKEND=dynamodb" in refused.value.hint
    with pytest.raises(UsageError):
        executors.choose("lambda")
    assert executors.choose(None) == "local"


def test_targets_file_lines_comments_repo_prefix_and_refusals(tdev, git_repo, tmp_path, monkeypatch):
    (git_repo / "packages" / "tools").mkdir()
    monkeypatch.chdir(git_repo)
    listed = tmp_path / "targets.txt"
    listed.write_text(f"# fleet\npackages/agents\n\n{git_repo}:packages/tools   # the tools\n")
    assert read_targets(listed) == [git_repo / "packages/agents", git_repo / "packages/tools"]
    listed.write_text(f"packages/agents\n{git_repo}:packages/agents\n")
    with pytest.raises(UsageError, match=r"targets.txt:2: .* a second time"):
        read_targets(listed)
    listed.write_text(f"packages/agents\n{tmp_path}:elsewhere\n")
    with pytest.raises(UsageError, match=r"targets.txt:2: "):
        read_targets(listed)
    listed.write_text("# nothing\n")
    with pytest.raises(UsageError, match="names no target"):
        read_targets(listed)


def test_origin_records_the_public_remote_the_base_commit_and_the_path_inside(git_repo):
    found = executors.origin(git_repo / "packages/agents")
    assert found == {"remote_url": str(git_repo.parent / "origin.git"), "base_sha": git(git_repo, "rev-parse", "HEAD"),
                     "target_path": "packages/agents"}
