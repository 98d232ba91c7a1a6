"""Unit tests of the AWS layer: agent calls, AgentCore, provisioned concurrency, throttling, credentials."""

from __future__ import annotations

import io
import json

import pytest
from aws_helpers import fresh_clients, lambda_agent, make_function, queue_lambda_results  # noqa: F401
from botocore.response import StreamingBody
from botocore.stub import Stubber

from lib.adapters import aws as aws_lib
from lib.agents import AgentError, Unsupported, runtime
from lib.agents.aws_base import decode_capacity, encode_capacity, parse_output
from lib.errors import ExternalError

PAYLOAD = {"evolution_id": "evo-1", "task_id": "task-1", "cycle": 1, "phase": "research", "target": "t",
           "focus": "quality", "dry_run": True, "context": {}}


# ---- the agent contract over Lambda Invoke ---------------------------------------------------------

def test_lambda_invoke_returns_the_contract(tdev, aws):
    make_function("research-agent")
    queue_lambda_results(aws["endpoint"], [{"status": "ok", "output": {"files": 3}, "cost_usd": 0.02,
                                            "tokens": 120}])
    answer = runtime(lambda_agent()).invoke(PAYLOAD, timeout=30)
    assert answer == {"status": "ok", "output": {"files": 3}, "cost_usd": 0.02, "tokens": 120, "error": None}


def test_lambda_invoke_non_json_is_an_agent_error(tdev, aws):
    make_function("research-agent")
    queue_lambda_results(aws["endpoint"], ["this is not json"])
    with pytest.raises(AgentError, match="^bad-output: .*not JSON"):
        runtime(lambda_agent()).invoke(PAYLOAD, timeout=30)


def test_lambda_function_error_is_an_agent_error(tdev, aws):
    call = aws_lib.call_client("lambda", 35)
    with Stubber(call) as stub:
        stub.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled",
                                     "Payload": StreamingBody(io.BytesIO(b'{"errorMessage": "boom"}'), 24)})
        with pytest.raises(AgentError, match=r"^agent-error: .*\(Unhandled\): boom"):
            runtime(lambda_agent()).invoke(PAYLOAD, timeout=30)


def test_lambda_invoke_timeout(tdev, aws, monkeypatch):
    from botocore.exceptions import ReadTimeoutError

    class Slow:
        def invoke(self, **_):
            raise ReadTimeoutError(endpoint_url="http://lambda")

    monkeypatch.setattr(aws_lib, "call_client", lambda service, timeout: Slow())
    with pytest.raises(AgentError, match="^timeout: .*within 30s"):
        runtime(lambda_agent()).invoke(PAYLOAD, timeout=30)


def test_parse_output_requires_the_contract():
    with pytest.raises(AgentError, match="not the agent contract"):
        parse_output(b'{"result": 1}', "x")
    assert parse_output('{"status": "error", "error": "no"}', "x")["error"] == "no"


def test_capacity_tag_encoding_round_trips():
    for capacity in ({"reserved": 7}, {"reserved": None, "provisioned": 2}, {"desired": 0}):
        text = encode_capacity(capacity)
        assert "{" not in text and decode_capacity(text) == capacity


# ---- provisioned concurrency (moto has no API for it: Stubber) -----------------------------------------

def test_provisioned_scale_and_stop_start(tdev, aws):
    agent = runtime(lambda_agent(qualifier="live"))
    with Stubber(aws_lib.client("lambda")) as stub:
        stub.add_client_error("get_provisioned_concurrency_config", "ProvisionedConcurrencyConfigNotFoundException")
        stub.add_response("put_provisioned_concurrency_config", {"RequestedProvisionedConcurrentExecutions": 4},
                          {"FunctionName": "research-agent", "Qualifier": "live", "ProvisionedConcurrentExecutions": 4})
        assert agent.scale(4, provisioned=True) == (None, 4)
        stub.add_response("get_function_concurrency", {"ReservedConcurrentExecutions": 10})
        stub.add_response("get_provisioned_concurrency_config", {"RequestedProvisionedConcurrentExecutions": 4})
        stub.add_response("get_provisioned_concurrency_config", {"RequestedProvisionedConcurrentExecutions": 4})
        stub.add_response("delete_provisioned_concurrency_config", {})
        stub.add_response("put_function_concurrency", {"ReservedConcurrentExecutions": 0},
                          {"FunctionName": "research-agent", "ReservedConcurrentExecutions": 0})
        assert agent.stop() == {"reserved": 10, "provisioned": 4}
        stub.add_response("put_function_concurrency", {"ReservedConcurrentExecutions": 10})
        stub.add_response("put_provisioned_concurrency_config", {"RequestedProvisionedConcurrentExecutions": 4})
        agent.start({"reserved": 10, "provisioned": 4})
        stub.assert_no_pending_responses()


# ---- AgentCore -------------------------------------------------------------------------------------------


def test_agentcore_restart_waits_for_ready_and_invoke(tdev, aws):
    agent = runtime({"name": "a", "phase": "research", "runtime": "agentcore", "agent_runtime_id": "rt-1"})
    described = {"agentRuntimeArn": "arn:aws:bedrock-agentcore:us-east-1:1:agent/rt-1", "agentRuntimeName": "a",
                 "agentRuntimeId": "rt-1", "agentRuntimeVersion": "3", "createdAt": "2024-01-01T00:00:00Z",
                 "lastUpdatedAt": "2024-01-01T00:00:00Z", "roleArn": "arn:aws:iam::1:role/r",
                 "networkConfiguration": {"networkMode": "PUBLIC"}, "status": "READY",
                 "lifecycleConfiguration": {"idleRuntimeSessionTimeout": 900},
                 "agentRuntimeArtifact": {"containerConfiguration": {"containerUri": "u"}}}
    with Stubber(aws_lib.client("bedrock-agentcore-control")) as control:
        control.add_response("get_agent_runtime", described)
        control.add_response("update_agent_runtime", {
            "agentRuntimeArn": described["agentRuntimeArn"], "agentRuntimeId": "rt-1", "agentRuntimeVersion": "4",
            "createdAt": "2024-01-01T00:00:00Z", "lastUpdatedAt": "2024-01-02T00:00:00Z", "status": "UPDATING"})
        control.add_response("get_agent_runtime", {**described, "status": "READY", "agentRuntimeVersion": "4"})
        assert agent.restart() == "new runtime version v4"
        control.add_response("get_agent_runtime", described)
        body = json.dumps({"status": "ok", "output": "done", "cost_usd": 0.5, "tokens": 9}).encode()
        with Stubber(aws_lib.call_client("bedrock-agentcore", 65)) as data:
            data.add_response("invoke_agent_runtime", {"response": StreamingBody(io.BytesIO(body), len(body)),
                                                       "contentType": "application/json", "statusCode": 200})
            assert agent.invoke(PAYLOAD, timeout=60)["output"] == "done"
    with pytest.raises(Unsupported, match="scales sessions on demand"):
        agent.scale(3)


# ---- throttling and credentials ----------------------------------------------------------------------------

def test_throttled_then_success_is_retried_by_standard_mode(tdev, aws):
    """botocore's standard retry mode retries a throttled call (HTTP layer: Stubber skips retries)."""
    from botocore.awsrequest import AWSResponse

    lam = aws_lib.client("lambda")
    attempts = []

    class Raw:
        def __init__(self, body):
            self.body = body

        def stream(self, **_):
            yield self.body

    def throttle_first(request, **_):
        attempts.append(request.url)
        if len(attempts) == 1:
            body = b'{"message": "Rate exceeded"}'
            return AWSResponse(request.url, 429, {"x-amzn-ErrorType": "TooManyRequestsException"}, Raw(body))
        return None  # the real request goes to moto

    make_function("research-agent")
    lam.meta.events.register("before-send.lambda.GetFunctionConcurrency", throttle_first)
    try:
        assert runtime(lambda_agent()).capacity() == {"reserved": None}
    finally:
        lam.meta.events.unregister("before-send.lambda.GetFunctionConcurrency", throttle_first)
    assert len(attempts) == 2


def test_throttled_after_retries_is_one_clear_line_then_success(tdev, aws):
    """With a Stubber (no retry layer): a throttle that outlasts the retries reads as one line with a hint,
    and the next call succeeds."""
    agent = runtime(lambda_agent())
    with Stubber(aws_lib.client("lambda")) as stub:
        stub.add_client_error("get_function_concurrency", "TooManyRequestsException", "Rate exceeded", 429)
        stub.add_response("get_function_concurrency", {"ReservedConcurrentExecutions": 3})
        with pytest.raises(ExternalError) as raised:
            agent.capacity()
        assert "TooManyRequestsException: Rate exceeded" in str(raised.value)
        assert "wait a minute and run again" in str(raised.value) and "\n" not in str(raised.value)
        assert agent.capacity() == {"reserved": 3}


def test_missing_credentials_is_one_clear_error(tdev):
    with pytest.raises(ExternalError, match="no AWS credentials found; set AWS_PROFILE"):
        aws_lib.require_credentials("query the agents")
