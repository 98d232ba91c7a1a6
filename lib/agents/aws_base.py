"""What the AWS runtimes (lambda, ecs, agentcore) share: the agent contract's output,
the pre-stop capacity tag and the figures of check_resource_usage.py."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from lib.agents import AgentError, Runtime
from lib.errors import ExternalError

PRE_STOP_TAG = "tdev:pre-stop-capacity"
#: check_resource_usage.py warns when a figure passes this share of its limit.
NEAR_LIMIT = 0.8
_TAG_VALUE = re.compile(r"^[\w.:/=+@ -]*$")


def parse_output(raw: bytes | str, who: str) -> dict:
    """The agent contract's output document ({status, output, cost_usd, tokens, error}) from raw JSON."""
    try:
        document = json.loads(raw or b"")
    except ValueError:
        raise AgentError(f"bad-output: {who}: the agent's answer is not JSON ({len(raw or b'')} bytes)",
                         "the agent must print one JSON document: {status, output, cost_usd, tokens, error}") from None
    if not isinstance(document, dict) or document.get("status") not in ("ok", "error"):
        raise AgentError(f"bad-output: {who}: the agent's answer is not the agent contract (no status ok|error)",
                         "the agent must answer {status, output, cost_usd, tokens, error}")
    return {
        "status": document["status"],
        "output": document.get("output"),
        "cost_usd": float(document.get("cost_usd") or 0),
        "tokens": int(document.get("tokens") or 0),
        "error": document.get("error"),
    }


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
        from lib.adapters import aws

        return aws.client(self.api)

    def _call(self, what: str, operation: str, **params):
        """One API call on the resource; botocore errors become one clear line naming it."""
        from lib.adapters import aws

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
