"""The state machine definition (what is retried, what is not) and the executor's resource checks on moto."""

from __future__ import annotations

import json
import time

import pytest
from aws_helpers import client

from lib.adapters import stepfunctions as sfn

SETTINGS = {"cluster": "t-developer", "task_definition": "t-developer-runner", "container": "runner",
            "subnets": ["subnet-1"], "security_groups": [], "log_group": None}


def test_one_fargate_runtask_sync_step_runs_the_worker_against_the_table():
    document = sfn.definition(SETTINGS, "team-table")
    run = document["States"][document["StartAt"]]
    assert run["Resource"] == "arn:aws:states:::ecs:runTask.sync"
    parameters = run["Parameters"]
    assert (parameters["LaunchType"], parameters["Cluster"], parameters["TaskDefinition"]) == (
        "FARGATE", "t-developer", "t-developer-runner")
    assert parameters["NetworkConfiguration"]["AwsvpcConfiguration"] == {"Subnets": ["subnet-1"],
                                                                        "AssignPublicIp": "DISABLED"}
    [override] = parameters["Overrides"]["ContainerOverrides"]
    assert override["Name"] == "runner"
    assert override["Command.$"] == "States.Array('python', '-m', 'lib.evolution.worker', $.evolution_id)"
    environment = {e["Name"]: e.get("Value", e.get("Value.$")) for e in override["Environment"]}
    assert environment == {"TDEV_EVOLUTION_ID": "$.evolution_id", "TDEV_STATE_BACKEND": "dynamodb",
                           "TDEV_STATE_TABLE": "team-table"}
    assert json.loads(sfn.execution_input("evo-1")) == {"evolution_id": "evo-1", "starts": 0}


def test_only_infrastructure_errors_are_retried_with_full_jitter():
    document = sfn.definition({**SETTINGS, "security_groups": ["sg-1"]}, "t")
    retried = [rule for state in document["States"].values() for rule in state.get("Retry", [])]
    assert len(retried) == 1
    [rule] = retried
    assert rule["ErrorEquals"] == ["ECS.AmazonECSException", "ECS.ServerException", "ECS.ThrottlingException"]
    assert rule["JitterStrategy"] == "FULL" and rule["MaxAttempts"] >= 1
    text = json.dumps(document)
    assert "States.ALL" not in text and "States.TaskFailed" not in text
    assert all("Catch" not in state for state in document["States"].values())


def test_a_runner_that_exits_non_zero_fails_the_execution_and_a_task_that_never_started_is_restarted_bounded():
    states = sfn.definition(SETTINGS, "t")["States"]
    choice = states["Runner ended"]
    assert states[choice["Default"]] == {**states[choice["Default"]], "Type": "Fail", "Error": "Evolution.RunnerFailed"}
    ok, restart = choice["Choices"]
    assert states[ok["Next"]]["Type"] == "Succeed"
    assert {"Variable": "$.runner.container.ExitCode", "NumericEquals": 0} in ok["And"]
    assert {"Variable": "$.task.StopCode", "StringEquals": "TaskFailedToStart"} in restart["And"]
    assert {"Variable": "$.starts", "NumericLessThan": sfn.START_ATTEMPTS - 1} in restart["And"]
    wait = states[restart["Next"]]
    count = states[wait["Next"]]
    assert count["Parameters"]["starts.$"] == "States.MathAdd($.starts, 1)" and count["Next"] == sfn.RUN_STATE


def test_execution_arn_is_named_by_the_evolution():
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:t-developer-evolution"
    assert sfn.execution_arn(machine, "evo-1") == (
        "arn:aws:states:us-east-1:123456789012:execution:t-developer-evolution:evo-1")


@pytest.mark.usefixtures("aws")
def test_check_resources_names_each_missing_one():
    problems = sfn.check_resources({**SETTINGS, "subnets": ["subnet-nope"], "security_groups": ["sg-nope"]})
    assert [p.split(" ")[0] for p in problems] == ["ECS", "task", "subnet", "security"]
    assert "settings executor.subnets" in problems[2] and "settings executor.security_groups" in problems[3]
    client("ecs").create_cluster(clusterName="t-developer")
    client("ecs").register_task_definition(family="t-developer-runner",
                                           containerDefinitions=[{"name": "other", "image": "x", "memory": 64}])
    vpc = client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = client("ec2").create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    problems = sfn.check_resources({**SETTINGS, "subnets": [subnet]})
    assert problems == ["task definition 't-developer-runner' has no container 'runner' (it has: other)"]
    assert sfn.check_resources({**SETTINGS, "subnets": []}) == [
        "task definition 't-developer-runner' has no container 'runner' (it has: other)",
        "settings executor.subnets is empty: a Fargate task needs at least one subnet"]


@pytest.mark.usefixtures("aws")
def test_the_runners_log_stream_is_found_from_its_task_definition_and_read_on():
    client("ecs").register_task_definition(family="t-developer-runner", containerDefinitions=[{
        "name": "runner", "image": "x", "memory": 64, "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "/t-developer/runner", "awslogs-stream-prefix": "evolution"}}}])
    task = "arn:aws:ecs:us-east-1:123456789012:task/t-developer/0123abcd"
    group, stream = sfn.log_stream(task, SETTINGS)
    assert (group, stream) == ("/t-developer/runner", "evolution/runner/0123abcd")
    assert sfn.log_events(group, stream, None) == ([], None)  # not there yet
    logs, now = client("logs"), int(time.time() * 1000)
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": now, "message": "evolution started"}])
    lines, token = sfn.log_events(group, stream, None)
    assert lines == ["evolution started"]
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": now + 1, "message": "evolution succeeded"}])
    assert sfn.log_events(group, stream, token)[0] == ["evolution succeeded"]
    assert sfn.log_stream(task, {**SETTINGS, "container": "other"}) is None
