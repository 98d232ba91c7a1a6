"""What the AWS runtimes (lambda, ecs, agentcore) share: the agent contract's output,
the pre-stop capacity tag and the figures of check_resource_usage.py."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import timedelta

from lib.adapters import aws
from lib.agents import AgentError, Runtime
from lib.errors import ExternalError, ToolError
from lib.log import mask_secrets

PRE_STOP_TAG = "tdev:pre-stop-capacity"
#: seconds an agent call's read timeout adds to the phase timeout, so the agent's own timeout answers first
CALL_MARGIN_SECONDS = 5
#: check_resource_usage.py warns when a figure passes this share of its limit.
NEAR_LIMIT = 0.8
_TAG_VALUE = re.compile(r"^[\w.:/=+@ -]*$")


def parse_output(raw: bytes | str, agent: str, source: str = "the agent") -> dict:
    """The agent contract's output document ({status, output, cost_usd, tokens, error}) from raw JSON.

    Only the envelope is checked here; what `output` must hold per phase is the runner's check.
    """
    def bad(what: str) -> AgentError:
        return AgentError(f"bad-output: {agent}: {what}",
                          "the agent must answer one JSON object: {status, output, cost_usd, tokens, error}")

    try:
        document = json.loads(raw or b"")
    except ValueError:
        head = mask_secrets((raw or b"").decode(errors="replace"))[:80]  # masked before the cut
        raise bad(f"the answer of {source} is not JSON ({len(raw or b'')} bytes: {head!r})") from None
    if not isinstance(document, dict):
        raise bad(f"the answer of {source} is a JSON {type(document).__name__}, not an object")
    if document.get("status") not in ("ok", "error"):
        raise bad(f"the answer of {source} is not the agent contract (status {document.get('status')!r}, "
                  f"expected ok or error)")
    cost = document.get("cost_usd") or 0
    if isinstance(cost, bool) or not isinstance(cost, int | float):
        raise bad(f"cost_usd is {cost!r}, expected a number")
    tokens = _tokens(document.get("tokens") or 0)
    if tokens is None:
        raise bad(f"tokens is {document.get('tokens')!r}, expected an integer or {{input, output}}")
    return {"status": document["status"], "output": document.get("output"), "cost_usd": float(cost),
            "tokens": tokens, "error": document.get("error")}


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tokens(value):
    """An integer, or {input, output} of integers (other keys dropped); None when it is neither (DESIGN §5)."""
    if isinstance(value, dict):
        pair = {"input": value.get("input"), "output": value.get("output")}
        return pair if all(_count(v) for v in pair.values()) else None
    return value if _count(value) else None


def encode_capacity(capacity: dict) -> str:
    """A capacity dict as a tag value AWS accepts (no braces or quotes): 'reserved=5 provisioned=none'."""
    text = " ".join(f"{key}={'none' if value is None else value}" for key, value in sorted(capacity.items()))
    if not _TAG_VALUE.match(text) or len(text) > 256:
        raise ValueError(f"capacity {capacity!r} does not fit in a tag value")
    return text


def decode_capacity(text: str) -> dict:
    capacity = {}
    for pair in text.split():
        key, _, value = pair.partition("=")
        capacity[key] = None if value == "none" else int(value)
    return capacity


def figure(name: str, value, limit=None, unit: str = "", warn: bool = False, note: str = "") -> dict:
    """One row of check_resource_usage.py: a figure, its limit and whether it nears it."""
    return {"figure": name, "value": value, "limit": limit, "unit": unit,
            "status": "warning" if warn else "ok", "note": note}


def near(value, limit) -> bool:
    return value is not None and bool(limit) and value >= NEAR_LIMIT * limit


class AwsRuntime(Runtime):
    """A runtime whose agent is an AWS resource: it can be called, tagged and measured."""

    #: boto3 service name of the resource's API; subclasses set it.
    api = ""

    def resource(self) -> str:
        """How error lines name the resource ("Lambda function research-agent")."""
        raise NotImplementedError

    @property
    def client(self):

        return aws.client(self.api)

    def agent_client(self, service: str, timeout: float):
        """The client of agent calls: one attempt, a read timeout just past the phase timeout."""

        return aws.call_client(service, int(timeout) + CALL_MARGIN_SECONDS)

    @contextlib.contextmanager
    def agent_errors(self, what: str, timeout: float | None):
        """AWS failures during an agent call as one AgentError line.

        With the call's timeout (the read of a synchronous call is bounded by it), a read that
        timed out is `timeout:`; without one it is an AWS failure like any other.
        """
        from botocore.exceptions import ReadTimeoutError


        try:
            with aws.aws_errors(f"{self.name}: {what}"):
                yield
        except AgentError:
            raise
        except ToolError as failure:
            if timeout is not None and isinstance(failure.__cause__, ReadTimeoutError):
                raise AgentError(f"timeout: {self.name}: no answer from {self.resource()} "
                                 f"within {timeout:g}s") from None
            raise AgentError(f"agent-error: {failure.message}", failure.hint) from failure

    def _call(self, what: str, operation: str, **params):
        """One API call on the resource; botocore errors become one clear line naming it."""

        with aws.aws_errors(f"{self.name}: {what} {self.resource()}"):
            return getattr(self.client, operation)(**params)

    def arn(self) -> str:
        raise NotImplementedError

    def tags(self) -> dict:
        raise NotImplementedError

    def set_tag(self, key: str, value: str) -> None:
        raise NotImplementedError

    def remove_tag(self, key: str) -> None:
        raise NotImplementedError

    def usage(self, window: timedelta = timedelta(hours=1)) -> list[dict]:
        """Figures of the last window with their limits (check_resource_usage.py)."""
        raise ExternalError(f"{self.name}: no usage figures for runtime {self.agent['runtime']}")

    def is_stopped(self, capacity: dict) -> bool:
        """True when a capacity means the agent takes no work."""
        raise NotImplementedError
