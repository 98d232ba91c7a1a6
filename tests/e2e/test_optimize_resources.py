"""End to end: optimize_resources.py against moto; the overdue-task path against a Stubber."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from aws_helpers import client, fresh_clients, make_function, make_service, put_metrics, registry  # noqa: F401
from botocore.stub import Stubber

from lib import timeparse
from lib.ops import optimize


def setup_resources(tdev, monkeypatch):
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "2")
    make_function("research-agent", memory=1024)
    make_function("planner-fn", memory=512)
    client("lambda").put_function_concurrency(FunctionName="planner-fn", ReservedConcurrentExecutions=5)
    make_service("evaluator-agent", desired=2)
    registry(tdev, [
        {"name": "research-agent", "phase": "research", "runtime": "lambda"},
        {"name": "planner-agent", "phase": "plan", "runtime": "lambda", "function_name": "planner-fn"},
        {"name": "evaluator-agent", "phase": "evaluate", "runtime": "ecs", "service": "evaluator-agent"},
    ])
    logs = client("logs")
    for group in ("/aws/lambda/research-agent", "/aws/lambda/planner-fn"):
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName="/aws/lambda/research-agent", logStreamName="s", logEvents=[
        {"timestamp": now - 1000, "message": "REPORT RequestId: a Duration: 10 ms Billed Duration: 10 ms "
                                             "Memory Size: 1024 MB Max Memory Used: 150 MB"},
        {"timestamp": now, "message": "REPORT RequestId: b Duration: 10 ms Billed Duration: 10 ms "
                                      "Memory Size: 1024 MB Max Memory Used: 180 MB"}])
    logs.put_retention_policy(logGroupName="/aws/lambda/planner-fn", retentionInDays=14)
    put_metrics("AWS/Lambda", [
        {"MetricName": "Invocations", "Dimensions": [{"Name": "FunctionName", "Value": "research-agent"}],
         "Value": 10}])


def test_dry_run_lists_findings_and_changes_nothing(tdev, aws, monkeypatch):
    setup_resources(tdev, monkeypatch)
    result = tdev.run("optimize_resources.py", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    rows = {(r["kind"], r["resource"]): r for r in json.loads(result.stdout)}
    assert rows[("lambda memory", "research-agent")]["fix"].startswith("set memory to 320 MB")
    assert rows[("idle reserved concurrency", "planner-fn")]["result"] == "would fix"
    assert rows[("log retention", "/aws/lambda/research-agent")]["result"] == "would fix"
    assert ("log retention", "/aws/lambda/planner-fn") not in rows
    assert rows[("idle ECS service", "t-developer/evaluator-agent")]["result"] == "needs --aggressive"
    assert client("lambda").get_function_configuration(FunctionName="research-agent")["MemorySize"] == 1024
    assert not (tdev.history / "audit.log").exists()


def test_fixes_and_aggressive(tdev, aws, monkeypatch):
    setup_resources(tdev, monkeypatch)
    result = tdev.run("optimize_resources.py")
    assert result.returncode == 0, result.stderr
    assert "needs --aggressive" in result.stdout
    assert client("lambda").get_function_configuration(FunctionName="research-agent")["MemorySize"] == 320
    concurrency = client("lambda").get_function_concurrency(FunctionName="planner-fn")
    assert "ReservedConcurrentExecutions" not in concurrency
    retention = {g["logGroupName"]: g.get("retentionInDays") for g in client("logs").describe_log_groups()["logGroups"]}
    assert retention == {"/aws/lambda/research-agent": 30, "/aws/lambda/planner-fn": 14}
    ecs = client("ecs")
    assert ecs.describe_services(cluster="t-developer", services=["evaluator-agent"])["services"][0][
        "desiredCount"] == 2

    aggressive = tdev.run("optimize_resources.py", "--aggressive")
    assert aggressive.returncode == 0, aggressive.stderr
    assert ecs.describe_services(cluster="t-developer", services=["evaluator-agent"])["services"][0][
        "desiredCount"] == 0
    assert tdev.run("start_all_agents.py").returncode == 0  # the idle service comes back as it was
    assert ecs.describe_services(cluster="t-developer", services=["evaluator-agent"])["services"][0][
        "desiredCount"] == 2
    audit = [json.loads(line) for line in (tdev.history / "audit.log").read_text().splitlines()]
    assert audit[0]["result"] == "optimized" and "lambda memory: research-agent" in audit[0]["fixed"]


def test_overdue_standalone_tasks_are_stopped(tdev, aws, monkeypatch):
    """moto's tasks have no start time: the age check runs against a Stubber."""
    from lib.adapters import aws as aws_lib

    monkeypatch.setenv("TIMEOUT_SECONDS", "600")
    ecs = aws_lib.client("ecs")
    now = timeparse.utcnow()
    old = {"taskArn": "arn:aws:ecs:us-east-1:1:task/t-developer/old", "startedBy": "tdev-runner",
           "startedAt": now - timedelta(hours=2)}
    fresh = {"taskArn": "arn:aws:ecs:us-east-1:1:task/t-developer/fresh", "startedAt": now}
    service_task = {"taskArn": "arn:aws:ecs:us-east-1:1:task/t-developer/svc", "startedBy": "ecs-svc/123",
                    "startedAt": now - timedelta(days=3)}
    stub = Stubber(ecs)
    stub.add_response("list_tasks", {"taskArns": [t["taskArn"] for t in (old, fresh, service_task)]})
    stub.add_response("describe_tasks", {"tasks": [old, fresh, service_task]})
    stub.add_response("stop_task", {"task": old}, {"cluster": "t-developer", "task": old["taskArn"],
                                                   "reason": "optimize_resources.py: past its time limit"})
    with stub:
        found = optimize._overdue_task_findings({"t-developer"}, now)
        assert [f["resource"] for f in found] == ["old"] and "limit 10 min" in found[0]["finding"]
        found[0].apply()
    stub.assert_no_pending_responses()


def test_no_credentials(tdev):
    result = tdev.run("optimize_resources.py", "--dry-run")
    assert result.returncode == 1 and "no AWS credentials" in result.stderr
