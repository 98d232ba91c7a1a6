"""The remote runtimes carry the DESIGN §5 input document unchanged and bring back the output document:
Lambda and ECS on moto, AgentCore through botocore's Stubber (moto has no AgentCore data plane)."""

from __future__ import annotations

import io
import json

import pytest
from aws_helpers import client, fresh_clients, make_function, queue_lambda_results, registry  # noqa: F401
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from lib import config
from lib.adapters import aws as aws_lib
from lib.agents import AgentError, Unsupported, runtime
from lib.agents.aws_base import parse_output
from lib.errors import ConfigError

#: one input document with every §5 key, as the runner builds it
PAYLOAD = {
    "evolution_id": "evo-20250101120000-abc123", "task_id": "task-20250101120001-def456", "cycle": 1,
    "phase": "implement", "target": "packages/agents", "worktree": "/srv/tdev/worktrees/evo-1", "focus": "docs",
    "dry_run": False, "repo": {"remote_url": None, "base_sha": "0" * 40, "branch": "tdev/auto/20250101-docs-abc123"},
    "files": [{"path": "packages/agents/a.py", "content": "def f():\n    return 1\n"}],
    "patterns": [], "gates": {"docstring": {"threshold": 80, "direction": "min", "unit": "%"}},
    "metrics": {"files": 1, "docstring": 0.0}, "context": {"plan": {"files": ["packages/agents/a.py"]}},
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
}
PATCH = ("--- a/packages/agents/a.py\n+++ b/packages/agents/a.py\n@@ -1,2 +1,3 @@\n def f():\n"
         "+    \"\"\"One.\"\"\"\n     return 1\n")
ANSWER = {"status": "ok", "output": {"patch": PATCH, "summary": "docstring"}, "cost_usd": 0.12,
          "tokens": {"input": 900, "output": 40}, "error": None}


def body(document) -> StreamingBody:
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


# ---- Lambda -------------------------------------------------------------------------------------------

def lambda_agent(**extra) -> dict:
    return {"name": "refactor-agent", "phase": "implement", "runtime": "lambda", "function_name": "refactor-agent",
            **extra}


def record_sends(service_client, operation: str, raise_error: Exception | None = None) -> list:
    """The bodies the client puts on the wire for an operation (every attempt, retries included)."""
    sent = []

    def hook(request, **_):
        sent.append(request.body)
        if raise_error:
            raise raise_error

    service_client.meta.events.register(f"before-send.{service_client.meta.service_model.service_id.hyphenize()}"
                                        f".{operation}", hook)
    return sent


def test_lambda_sends_the_input_document_once_and_returns_the_output(tdev, aws):
    make_function("refactor-agent")
    queue_lambda_results(aws["endpoint"], [ANSWER])
    agent = runtime(lambda_agent())
    sent = record_sends(agent.agent_client("lambda", 60), "Invoke")
    assert agent.invoke(PAYLOAD, timeout=60) == ANSWER
    assert len(sent) == 1 and json.loads(sent[0]) == PAYLOAD


def test_lambda_agent_client_never_retries_and_others_keep_standard_retries(tdev, aws):
    calls = runtime(lambda_agent()).agent_client("lambda", 60)
    assert calls.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert calls.meta.config.read_timeout > 60
    assert aws_lib.client("lambda").meta.config.retries["total_max_attempts"] > 1
    assert calls is not aws_lib.client("lambda")


def test_lambda_read_timeout_is_a_timeout_and_is_sent_once(tdev, aws):
    from botocore.exceptions import ReadTimeoutError

    make_function("refactor-agent")
    agent = runtime(lambda_agent())
    sent = record_sends(agent.agent_client("lambda", 30), "Invoke", ReadTimeoutError(endpoint_url="http://lambda"))
    with pytest.raises(AgentError, match=r"^timeout: refactor-agent: no answer from Lambda function refactor-agent "
                                         r"within 30s"):
        agent.invoke(PAYLOAD, timeout=30)
    assert len(sent) == 1


def test_lambda_reply_that_is_not_an_object_is_bad_output(tdev, aws):
    make_function("refactor-agent")
    queue_lambda_results(aws["endpoint"], ["[1, 2]"])
    with pytest.raises(AgentError, match=r"^bad-output: refactor-agent: .* a JSON list, not an object"):
        runtime(lambda_agent()).invoke(PAYLOAD, timeout=30)


def test_lambda_function_error_names_type_and_message(tdev, aws):
    agent = runtime(lambda_agent(qualifier="live"))
    with Stubber(agent.agent_client("lambda", 30)) as stub:
        stub.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled",
                                     "Payload": body({"errorType": "KeyError", "errorMessage": "'files'"})},
                          {"FunctionName": "refactor-agent", "InvocationType": "RequestResponse",
                           "Payload": json.dumps(PAYLOAD).encode(), "Qualifier": "live"})
        with pytest.raises(AgentError, match=r"^agent-error: refactor-agent: Lambda refactor-agent failed "
                                             r"\(Unhandled, KeyError\): 'files'; see aws logs tail"):
            agent.invoke(PAYLOAD, timeout=30)


def test_lambda_aws_error_is_one_agent_error_line(tdev, aws):
    agent = runtime(lambda_agent())
    with Stubber(agent.agent_client("lambda", 30)) as stub, pytest.raises(AgentError) as raised:
        stub.add_client_error("invoke", "ResourceNotFoundException", "Function not found: refactor-agent", 404)
        agent.invoke(PAYLOAD, timeout=30)
    assert raised.value.message == ("agent-error: refactor-agent: invoke Lambda function refactor-agent: "
                                    "not found (Function not found: refactor-agent)")
    assert "\n" not in str(raised.value)


# ---- the output envelope ----------------------------------------------------------------------------

def test_output_envelope_keeps_token_pairs_and_refuses_bad_figures():
    assert parse_output(json.dumps(ANSWER), "a")["tokens"] == {"input": 900, "output": 40}
    assert parse_output('{"status": "error", "error": "no model"}', "a") == {
        "status": "error", "output": None, "cost_usd": 0.0, "tokens": 0, "error": "no model"}
    with pytest.raises(AgentError, match=r"^bad-output: a: tokens is"):
        parse_output('{"status": "ok", "tokens": {"input": 1}}', "a")
    with pytest.raises(AgentError, match=r"^bad-output: a: cost_usd is '1\$'"):
        parse_output('{"status": "ok", "cost_usd": "1$"}', "a")
    with pytest.raises(AgentError, match=r"^bad-output: a: the answer of the agent is not JSON"):
        parse_output(b"Traceback (most recent call last):", "a")


# ---- AgentCore ----------------------------------------------------------------------------------------

RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/refactor_agent-x1"


def agentcore_agent() -> dict:
    return {"name": "refactor-agent", "phase": "implement", "runtime": "agentcore",
            "agent_runtime_id": "refactor_agent-x1", "qualifier": "live"}


def stub_control(stubber: Stubber) -> None:
    stubber.add_response("get_agent_runtime", {
        "agentRuntimeArn": RUNTIME_ARN, "agentRuntimeName": "refactor_agent", "agentRuntimeId": "refactor_agent-x1",
        "agentRuntimeVersion": "3", "createdAt": "2025-01-01T00:00:00Z", "lastUpdatedAt": "2025-01-01T00:00:00Z",
        "roleArn": "arn:aws:iam::123456789012:role/r", "networkConfiguration": {"networkMode": "PUBLIC"},
        "status": "READY", "lifecycleConfiguration": {"idleRuntimeSessionTimeout": 900},
        "agentRuntimeArtifact": {"containerConfiguration": {"containerUri": "u"}}},
        {"agentRuntimeId": "refactor_agent-x1"})


def test_agentcore_sends_the_document_with_trace_context_and_parses_the_reply(tdev, aws):
    agent = runtime(agentcore_agent())
    data_client = agent.agent_client("bedrock-agentcore", 60)
    assert data_client.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
    with Stubber(aws_lib.client("bedrock-agentcore-control")) as control, Stubber(data_client) as data:
        stub_control(control)
        data.add_response("invoke_agent_runtime",
                          {"response": body(ANSWER), "contentType": "application/json", "statusCode": 200},
                          {"agentRuntimeArn": RUNTIME_ARN, "qualifier": "live", "runtimeSessionId": ANY,
                           "payload": json.dumps(PAYLOAD).encode(), "contentType": "application/json",
                           "accept": "application/json", "traceParent": PAYLOAD["traceparent"]})
        assert agent.invoke(PAYLOAD, timeout=60) == ANSWER


def test_agentcore_streamed_reply_is_bad_output(tdev, aws):
    agent = runtime(agentcore_agent())
    with Stubber(aws_lib.client("bedrock-agentcore-control")) as control, \
            Stubber(agent.agent_client("bedrock-agentcore", 60)) as data:
        stub_control(control)
        data.add_response("invoke_agent_runtime", {"response": body(b'data: {"status": "ok"}\n\n'),
                                                   "contentType": "text/event-stream", "statusCode": 200})
        with pytest.raises(AgentError, match=r"^bad-output: refactor-agent: .*answered a stream"):
            agent.invoke(PAYLOAD, timeout=60)


def test_agentcore_service_error_is_one_agent_error_line(tdev, aws):
    agent = runtime(agentcore_agent())
    with Stubber(aws_lib.client("bedrock-agentcore-control")) as control, \
            Stubber(agent.agent_client("bedrock-agentcore", 60)) as data:
        stub_control(control)
        data.add_client_error("invoke_agent_runtime", "RuntimeClientError", "container exited with code 1", 424)
        with pytest.raises(AgentError, match=r"^agent-error: refactor-agent: invoke AgentCore runtime "
                                             r"refactor_agent-x1: RuntimeClientError: container exited with code 1"):
            agent.invoke(PAYLOAD, timeout=60)


# ---- ECS ------------------------------------------------------------------------------------------------

BUCKET = "t-developer-backups"
IO = f"agent-io/{PAYLOAD['task_id']}"


def ecs_setup() -> dict:
    """The bucket, a cluster and a task definition with container `agent`; the agent runs it on Fargate.

    The task definition keeps moto's default network mode: moto fails to attach an awsvpc
    network interface, so the network configuration is checked in the request instead.
    """
    client("s3").create_bucket(Bucket=BUCKET)
    ecs = client("ecs")
    ecs.create_cluster(clusterName="t-developer")
    ecs.register_task_definition(family="refactor-agent", containerDefinitions=[
        {"name": "agent", "image": "agent:1", "essential": True, "memory": 512}])
    return {"name": "refactor-agent", "phase": "implement", "runtime": "ecs", "cluster": "t-developer",
            "task_definition": "refactor-agent", "container": "agent", "subnets": ["subnet-0a1"],
            "security_groups": ["sg-0b2"], "launch_type": "FARGATE", "poll_seconds": 0}


def fake_container(write_output: bool = True, stop_reason: str = ""):
    """Act as the task's container when RunTask returns: read the input the environment names and, as the
    agent would, write the output beside it. Runs before the runtime polls, so nothing races."""
    seen = {}

    def on_request(params, **_):
        seen["request"] = params

    def on_run_task(parsed, **_):
        task = parsed["tasks"][0]
        seen["task"] = client("ecs").describe_tasks(cluster="t-developer", tasks=[task["taskArn"]])["tasks"][0]
        overrides = seen["task"]["overrides"]["containerOverrides"]
        seen["overrides"] = overrides
        environment = {e["name"]: e["value"] for e in overrides[0]["environment"]}
        bucket, _, key = environment["TDEV_TASK_INPUT_S3"].removeprefix("s3://").partition("/")
        seen["input"] = json.loads(client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        if write_output:
            bucket, _, key = environment["TDEV_TASK_OUTPUT_S3"].removeprefix("s3://").partition("/")
            client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(ANSWER).encode())
        if stop_reason:
            client("ecs").stop_task(cluster="t-developer", task=task["taskArn"], reason=stop_reason)

    events = aws_lib.client("ecs").meta.events
    events.register("before-parameter-build.ecs.RunTask", on_request)
    events.register("after-call.ecs.RunTask", on_run_task)
    return seen


def test_ecs_task_gets_the_input_from_s3_and_its_output_is_read_back(tdev, aws):
    agent = ecs_setup()
    seen = fake_container()
    assert runtime(agent).invoke(PAYLOAD, timeout=60) == ANSWER
    assert seen["input"] == PAYLOAD
    head = client("s3").head_object(Bucket=BUCKET, Key=f"{IO}/input.json", ChecksumMode="ENABLED")
    assert head.get("ChecksumSHA256")
    assert seen["overrides"] == [{"name": "agent", "environment": [
        {"name": "TDEV_TASK_INPUT_S3", "value": f"s3://{BUCKET}/{IO}/input.json"},
        {"name": "TDEV_TASK_OUTPUT_S3", "value": f"s3://{BUCKET}/{IO}/output.json"},
        {"name": "TDEV_EVOLUTION_ID", "value": PAYLOAD["evolution_id"]},
        {"name": "TDEV_TASK_ID", "value": PAYLOAD["task_id"]}]}]
    assert seen["task"]["launchType"] == "FARGATE"
    assert seen["request"]["networkConfiguration"] == {
        "awsvpcConfiguration": {"subnets": ["subnet-0a1"], "securityGroups": ["sg-0b2"]}}
    task = client("ecs").describe_tasks(cluster="t-developer", tasks=[seen["task"]["taskArn"]])["tasks"][0]
    assert task["lastStatus"] == "STOPPED"  # the call returned once the task had stopped


def test_ecs_task_without_output_names_stopped_reason_and_exit_code(tdev, aws):
    agent = ecs_setup()
    client("s3").put_object(Bucket=BUCKET, Key=f"{IO}/output.json", Body=json.dumps(ANSWER).encode())  # a stale one
    fake_container(write_output=False, stop_reason="Essential container in task exited")
    with pytest.raises(AgentError) as raised:
        runtime(agent).invoke(PAYLOAD, timeout=60)
    assert raised.value.message.startswith("bad-output: refactor-agent: ECS task ")
    assert f"stopped without writing s3://{BUCKET}/{IO}/output.json" in raised.value.message
    assert "(stopped: Essential container in task exited; container agent exit code 0)" in raised.value.message


def test_ecs_task_past_the_timeout_is_stopped(tdev, aws):
    agent = ecs_setup()
    seen = fake_container(write_output=False)
    with pytest.raises(AgentError, match=r"^timeout: refactor-agent: ECS task \S+ did not finish within 0s "
                                         r"\(stopped it\)"):
        runtime(agent).invoke(PAYLOAD, timeout=0)
    task = client("ecs").describe_tasks(cluster="t-developer", tasks=[seen["task"]["taskArn"]])["tasks"][0]
    assert task["desiredStatus"] == "STOPPED" and "phase timeout" in task["stoppedReason"]


def test_ecs_run_task_failures_are_one_agent_error_line(tdev, aws):
    agent = ecs_setup()
    with Stubber(aws_lib.client("ecs")) as stub:
        stub.add_response("run_task", {"tasks": [], "failures": [{"reason": "RESOURCE:MEMORY", "arn": "arn:x"}]})
        with pytest.raises(AgentError, match=r"^agent-error: refactor-agent: ECS did not start a task of "
                                             r"refactor-agent on cluster t-developer: RESOURCE:MEMORY arn:x;"):
            runtime(agent).invoke(PAYLOAD, timeout=60)


def test_ecs_task_agent_status_and_no_capacity(tdev, aws):
    agent = runtime(ecs_setup())
    status = agent.status()
    assert status["state"] == "available" and status["version"] == "refactor-agent:1"
    assert agent.capacity() is None
    with pytest.raises(Unsupported, match="cannot scale an ECS task agent"):
        agent.scale(2)


def test_ecs_service_agent_cannot_take_a_phase(tdev, aws):
    from lib.health import preflight

    service = {"name": "planner-agent", "phase": "plan", "runtime": "ecs", "cluster": "t-developer"}
    with pytest.raises(AgentError, match=r"^agent-error: planner-agent: ECS service t-developer/planner-agent is "
                                         r"long-running"):
        runtime(service).invoke(PAYLOAD, timeout=60)
    registry(tdev, [{"name": "research-agent", "phase": "research", "runtime": "local"}, service,
                    {**ecs_setup(), "poll_seconds": 2}])
    status, summary = preflight.agents_take_phases({"target": "packages/agents"})
    assert status == "critical"
    assert summary.startswith("agent planner-agent cannot take phase plan: ECS service") and ";" not in summary


def test_ecs_agent_fields_are_part_of_the_schema(tdev):
    config.validate("agents", {"agents": [{"name": "a", "phase": "implement", "runtime": "ecs",
                                           "task_definition": "a:3", "container": "agent", "subnets": ["s"],
                                           "security_groups": ["g"], "launch_type": "FARGATE", "poll_seconds": 1}]})
    with pytest.raises(ConfigError, match="needs container"):
        runtime({"name": "a", "phase": "implement", "runtime": "ecs", "task_definition": "a:3"})


def test_ecs_task_agent_has_no_service_widget_and_no_idle_service_finding(tdev, aws):
    from lib.ops import monitoring, optimize

    task_agent = ecs_setup()
    registry(tdev, [task_agent])
    body = monitoring.dashboard_bodies({})[monitoring.dashboard_name("Agent")]
    series = [m for w in body["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]]
    assert not [m for m in series if m[0] == "AWS/ECS"]
    text = next(w for w in body["widgets"] if w["type"] == "text")["properties"]["markdown"]
    assert "refactor-agent" in text
    assert optimize._ecs_findings(task_agent, None, None) == []
