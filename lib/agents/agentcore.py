"""The agentcore runtime: an agent hosted on Amazon Bedrock AgentCore Runtime.

The control plane (bedrock-agentcore-control) gives status and updates; the data plane
(bedrock-agentcore InvokeAgentRuntime) is the synchronous agent call. AgentCore starts a
session per call and scales on its own, so there is no capacity to scale, stop or start.
"""

from __future__ import annotations

import json
import uuid

from lib import timeparse
from lib.adapters import aws
from lib.agents import AgentError, Unsupported
from lib.agents.aws_base import AwsRuntime, parse_output
from lib.errors import ConfigError, ExternalError

RESTART_VARIABLE = "TDEV_RESTARTED_AT"
UPDATE_TIMEOUT_SECONDS = 600
#: what update_agent_runtime needs back, beside the environment, so that nothing else changes
_KEPT_FIELDS = ("agentRuntimeArtifact", "roleArn", "networkConfiguration", "description", "authorizerConfiguration",
                "requestHeaderConfiguration", "protocolConfiguration", "lifecycleConfiguration")


class AgentCoreRuntime(AwsRuntime):
    def __init__(self, agent: dict):
        super().__init__(agent)
        if not agent.get("agent_runtime_id"):
            raise ConfigError(f"agent {self.name}: runtime agentcore needs agent_runtime_id",
                              "add it in config/agents.yaml")
        self.runtime_id = agent["agent_runtime_id"]
        self.qualifier = agent.get("qualifier")
        self.update_timeout = float(agent.get("restart_timeout_seconds") or UPDATE_TIMEOUT_SECONDS)

    def _runtime(self) -> dict:
        with aws.aws_errors(f"{self.name}: read AgentCore runtime {self.runtime_id}"):
            return aws.client("bedrock-agentcore-control").get_agent_runtime(agentRuntimeId=self.runtime_id)

    def resource(self) -> str:
        return f"AgentCore runtime {self.runtime_id}"

    def invoke(self, payload: dict, timeout: float) -> dict:
        """InvokeAgentRuntime with the input document as payload, once, in a session of its own."""
        extra = {"qualifier": self.qualifier} if self.qualifier else {}
        if payload.get("traceparent"):
            extra["traceParent"] = payload["traceparent"]
        session = f"{payload.get('evolution_id', 'tdev')}-{payload.get('task_id', '')}-{uuid.uuid4().hex}"
        with self.agent_errors(f"invoke {self.resource()}", timeout):
            arn = self._runtime()["agentRuntimeArn"]
            answer = self.agent_client("bedrock-agentcore", timeout).invoke_agent_runtime(
                agentRuntimeArn=arn, runtimeSessionId=session[:100].ljust(33, "0"),
                payload=json.dumps(payload).encode(), contentType="application/json",
                accept="application/json", **extra)
            body = answer["response"].read()
        kind = answer.get("contentType", "application/json").split(";")[0].strip()
        if kind == "text/event-stream":
            raise AgentError(f"bad-output: {self.name}: {self.resource()} answered a stream ({kind}), "
                             f"not one JSON document", "the agent's entrypoint must return the output "
                             "document, not yield events")
        return parse_output(body, self.name, self.resource())

    def status(self) -> dict:
        runtime = self._runtime()
        updated = runtime.get("lastUpdatedAt")
        changed = timeparse.iso(updated) if updated else ""
        return {
            "state": str(runtime.get("status", "")).lower(),
            "version": f"v{runtime.get('agentRuntimeVersion', '?')} {changed}".strip(),
            "capacity": "on demand",
            "errors_last_hour": None,
            "detail": runtime.get("failureReason") or "",
        }

    def restart(self) -> str:
        """Update the runtime with a new TDEV_RESTARTED_AT: AgentCore makes a new version and new sessions."""
        runtime = self._runtime()
        variables = dict(runtime.get("environmentVariables") or {})
        variables[RESTART_VARIABLE] = timeparse.iso()
        kept = {key: runtime[key] for key in _KEPT_FIELDS if runtime.get(key)}  # empty ones are not valid input
        with aws.aws_errors(f"{self.name}: update AgentCore runtime {self.runtime_id}"):
            aws.client("bedrock-agentcore-control").update_agent_runtime(
                agentRuntimeId=self.runtime_id, environmentVariables=variables, **kept)
        final = aws.wait_for(self._runtime, lambda r: r.get("status") not in ("UPDATING", "CREATING"),
                             self.update_timeout, f"{self.name}: update of AgentCore runtime {self.runtime_id}")
        if final.get("status") != "READY":
            raise ExternalError(f"{self.name}: AgentCore runtime is {final.get('status')} after the update: "
                                f"{final.get('failureReason', '')}", "see the runtime in the AgentCore console")
        return f"new runtime version v{final.get('agentRuntimeVersion', '?')}"

    def _on_demand(self, action: str):
        raise Unsupported(f"{self.name}: cannot {action} an AgentCore agent",
                          "AgentCore Runtime scales sessions on demand; there is no capacity to set")

    def scale(self, instances: int, provisioned: bool = False) -> tuple:
        self._on_demand("scale")

    def stop(self):
        self._on_demand("stop")

    def start(self, capacity) -> None:
        self._on_demand("start")
