"""The agent registry (config/agents.yaml) and its runtimes.

Every runtime speaks the agent call contract of DESIGN §5: the runner's input document
in, unchanged, and {status: ok|error, output, cost_usd, tokens, error} out. Operations that a runtime's
service does not offer raise Unsupported with what to do instead.
"""

from __future__ import annotations

import importlib

from lib import config
from lib.errors import NotFound, ToolError

RUNTIME_CLASSES = {
    "local": "lib.agents.local:LocalRuntime",
    "command": "lib.agents.command:CommandRuntime",
    "lambda": "lib.agents.aws_lambda:LambdaRuntime",
    "ecs": "lib.agents.ecs:EcsRuntime",
    "agentcore": "lib.agents.agentcore:AgentCoreRuntime",
    "bedrock": "lib.agents.bedrock:BedrockRuntime",
    "openai": "lib.agents.openai_chat:OpenAIRuntime",
}


class AgentError(ToolError):
    """An agent call failed: non-zero exit, output that is not JSON, a timeout, an error status.

    The message starts with the error class (timeout:, exit-code:, bad-output:, agent-error:).
    A model agent whose answer was refused has still been paid for: cost_usd and tokens say
    what the failed call cost, so that the cost limits count it.
    """

    def __init__(self, message: str, hint: str | None = None, stderr_tail: list[str] | None = None,
                 cost_usd: float = 0.0, tokens: dict | None = None):
        super().__init__(message, hint)
        self.stderr_tail = stderr_tail or []
        self.cost_usd = cost_usd
        self.tokens = tokens


class Unsupported(ToolError):
    """The runtime's service has no such operation (a local agent cannot be scaled)."""


class Runtime:
    """Base of every runtime; subclasses override what their service supports."""

    def __init__(self, agent: dict):
        self.agent = agent
        self.name = agent["name"]

    def invoke(self, payload: dict, timeout: float) -> dict:
        """Run one agent call synchronously and return the contract's output document."""
        raise Unsupported(f"{self.name}: runtime {self.agent['runtime']} has no synchronous call")

    def worst_case_usd(self, payload: dict) -> float:
        """What the call could cost at most, reserved against the evolution's budget before it is made
        (DESIGN §5 Budget); 0 for agents that only report their cost afterwards."""
        return 0.0

    def cannot_take_phase(self) -> str:
        """Why this agent cannot be called for a phase at all (pre_evolution_check reports it); "" when it can."""
        return ""

    def status(self) -> dict:
        """{state, version, capacity, errors_last_hour, detail}: what agent_status.py shows."""
        return {"state": "available", "version": "", "capacity": "", "detail": ""}

    def _unsupported(self, action: str):
        raise Unsupported(f"{self.name}: cannot {action} a {self.agent['runtime']} agent",
                          "it runs in this process; nothing to do")

    def restart(self) -> str:
        self._unsupported("restart")

    def scale(self, instances: int, provisioned: bool = False) -> tuple:
        """Returns (old capacity, new capacity)."""
        self._unsupported("scale")

    def capacity(self):
        """The capacity to record before a stop (concurrency, desired count)."""
        return None

    def stop(self):
        """Take the agent down to zero; returns the capacity it had."""
        self._unsupported("stop")

    def start(self, capacity) -> None:
        """Bring the agent back to the capacity recorded at the stop."""
        self._unsupported("start")


def registry() -> list[dict]:
    return config.agents()


def get(name: str) -> dict:
    for agent in registry():
        if agent["name"] == name:
            return agent
    known = ", ".join(a["name"] for a in registry()) or "none registered"
    raise NotFound(f"unknown agent {name!r}", f"known agents: {known} (config/agents.yaml)")


def registered_for(phase: str) -> list[dict]:
    """Every agent registered for the phase, in the registry's order (implement may have several: candidates)."""
    return [agent for agent in registry() if agent["phase"] == phase]


def for_phase(phase: str) -> dict:
    """The agent the phase calls: the first registered for it."""
    found = registered_for(phase)
    if not found:
        raise NotFound(f"no agent registered for phase {phase!r}", "add one to config/agents.yaml")
    return found[0]


def runtime(agent: dict) -> Runtime:
    module_name, class_name = RUNTIME_CLASSES[agent["runtime"]].split(":")
    return getattr(importlib.import_module(module_name), class_name)(agent)
