"""Helpers for the AWS tests: make Lambda functions, ECS services and agent registries on moto."""

from __future__ import annotations

import io
import json
import zipfile

import boto3
import pytest

HANDLER = "def handler(event, context):\n    return {'status': 'ok', 'output': event, 'cost_usd': 0.01, 'tokens': 5}\n"


def client(service: str):
    return boto3.client(service, region_name="us-east-1")


def lambda_role() -> str:
    iam = client("iam")
    try:
        return iam.get_role(RoleName="tdev-agent")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        policy = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        return iam.create_role(RoleName="tdev-agent", AssumeRolePolicyDocument=policy)["Role"]["Arn"]


def make_function(name: str, memory: int = 512, timeout: int = 30, variables: dict | None = None) -> str:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("index.py", HANDLER)
    answer = client("lambda").create_function(
        FunctionName=name, Runtime="python3.11", Role=lambda_role(), Handler="index.handler",
        Code={"ZipFile": archive.getvalue()}, MemorySize=memory, Timeout=timeout,
        Environment={"Variables": variables or {"MODE": "test"}})
    return answer["FunctionArn"]


def make_service(name: str, cluster: str = "t-developer", desired: int = 2) -> str:
    ecs = client("ecs")
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(family=name, containerDefinitions=[
        {"name": name, "image": "agent:latest", "memory": 512, "essential": True,
         "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": f"/ecs/{name}"}}}])
    return ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=name,
                              desiredCount=desired)["service"]["serviceArn"]


def registry(tdev, agents: list[dict]) -> None:
    """Write config/agents.yaml of the isolated installation."""
    lines = ["agents:"]
    for agent in agents:
        lines.append("  - " + json.dumps(agent))
    tdev.write_config("agents", "\n".join(lines) + "\n")


def lambda_agent(**extra) -> dict:
    """The registry entry of research-agent on Lambda."""
    return {"name": "research-agent", "phase": "research", "runtime": "lambda", "function_name": "research-agent",
            **extra}


def queue_lambda_results(endpoint: str, results: list) -> None:
    from tests.conftest import moto_post

    moto_post(endpoint, "/moto-api/static/lambda-simple/response",
              {"results": [r if isinstance(r, str) else json.dumps(r) for r in results], "region": "us-east-1"})


def _clear_client_caches() -> None:
    from lib.adapters import aws

    for cached in (aws.client, aws.call_client, aws._session, aws.account_id):
        if hasattr(cached, "cache_clear"):  # a test may have replaced one
            cached.cache_clear()


@pytest.fixture(autouse=True)
def fresh_clients():
    """In-process AWS clients made for this test's environment (credentials and endpoint differ)."""
    _clear_client_caches()
    yield
    _clear_client_caches()


def put_metrics(namespace: str, data: list[dict]) -> None:
    """Datapoints two minutes old: a point in the current second is not yet inside a query ending now."""
    from datetime import UTC, datetime, timedelta

    moment = datetime.now(UTC) - timedelta(minutes=2)
    client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=[{"Timestamp": moment, **d} for d in data])
