"""The lambda runtime: an agent that is a Lambda function (DESIGN §8).

Scale is reserved concurrency (provisioned concurrency on the agent's `qualifier` with
--provisioned); stop is reserved concurrency 0; restart changes the environment
variable TDEV_RESTARTED_AT so that Lambda starts fresh execution environments.
"""

from __future__ import annotations

import json
from datetime import timedelta

from lib import timeparse
from lib.adapters import aws
from lib.agents import AgentError
from lib.agents.aws_base import AwsRuntime, figure, near, parse_output
from lib.errors import ExternalError, ToolError, UsageError
from lib.log import mask_secrets

RESTART_VARIABLE = "TDEV_RESTARTED_AT"
UPDATE_TIMEOUT_SECONDS = 300


class LambdaRuntime(AwsRuntime):
    api = "lambda"

    def __init__(self, agent: dict):
        super().__init__(agent)
        self.function = agent.get("function_name") or agent["name"]
        self.qualifier = agent.get("qualifier")
        self.update_timeout = float(agent.get("restart_timeout_seconds") or UPDATE_TIMEOUT_SECONDS)

    def resource(self) -> str:
        return f"Lambda function {self.function}"

    # ---- the agent contract ---------------------------------------------------------------
    def invoke(self, payload: dict, timeout: float) -> dict:
        """Invoke RequestResponse with the input document, once: a timed-out read is never sent again."""
        extra = {"Qualifier": self.qualifier} if self.qualifier else {}
        with self.agent_errors(f"invoke Lambda function {self.function}", timeout):
            response = self.agent_client("lambda", timeout).invoke(
                FunctionName=self.function, InvocationType="RequestResponse",
                Payload=json.dumps(payload).encode(), **extra)
            body = response["Payload"].read()
        if response.get("FunctionError"):
            kind, message = _function_error(body)
            raise AgentError(f"agent-error: {self.name}: Lambda {self.function} failed ({response['FunctionError']}"
                             f"{', ' + kind if kind else ''}): {message or 'no message'}",
                             f"see aws logs tail /aws/lambda/{self.function}")
        return parse_output(body, self.name, self.resource())

    # ---- status ---------------------------------------------------------------------------
    def _function(self) -> dict:
        return self._call("read", "get_function", FunctionName=self.function)

    def errors_last_hour(self) -> int | None:
        now = timeparse.utcnow()
        figures = aws.metric_stats({"errors": ("AWS/Lambda", "Errors", {"FunctionName": self.function}, "Sum")},
                                   now - timedelta(hours=1), now, 300)
        return None if figures["errors"] is None else int(figures["errors"])

    def status(self) -> dict:
        function = self._function()
        config = function["Configuration"]
        reserved = self._reserved()  # GetFunction leaves out a reserved concurrency of 0 on some endpoints
        state = "stopped" if reserved == 0 else str(config.get("State", "Active")).lower()
        update = config.get("LastUpdateStatus")
        if update and update != "Successful":
            state = f"{state}, update {update.lower()}"
        capacity = "unreserved" if reserved is None else f"reserved {reserved}"
        return {
            "state": state,
            "version": f"{config.get('Version', '')} {config.get('LastModified', '')[:19]}".strip(),
            "capacity": capacity,
            "errors_last_hour": self.errors_last_hour(),
            "detail": config.get("StateReason") or config.get("LastUpdateStatusReason") or "",
        }

    # ---- operations -----------------------------------------------------------------------
    def restart(self) -> str:
        config = self._call("read", "get_function_configuration", FunctionName=self.function)
        variables = dict(config.get("Environment", {}).get("Variables", {}))
        variables[RESTART_VARIABLE] = timeparse.iso()
        self._call("update", "update_function_configuration", FunctionName=self.function,
                   Environment={"Variables": variables})
        final = aws.wait_for(
            lambda: self._call("read", "get_function_configuration", FunctionName=self.function),
            lambda c: c.get("LastUpdateStatus", "Successful") in ("Successful", "Failed"),
            self.update_timeout, f"{self.name}: update of Lambda {self.function}", interval=1.0)
        if final.get("LastUpdateStatus") == "Failed":
            raise ExternalError(f"{self.name}: Lambda update failed: {final.get('LastUpdateStatusReason', '')}",
                                f"see aws lambda get-function --function-name {self.function}")
        return f"fresh execution environments ({RESTART_VARIABLE}={variables[RESTART_VARIABLE]})"

    def _reserved(self):
        answer = self._call("read the concurrency of", "get_function_concurrency", FunctionName=self.function)
        return answer.get("ReservedConcurrentExecutions")

    def _set_reserved(self, value) -> None:
        if value is None:
            self._call("unreserve the concurrency of", "delete_function_concurrency", FunctionName=self.function)
        else:
            self._call("set the concurrency of", "put_function_concurrency", FunctionName=self.function,
                       ReservedConcurrentExecutions=int(value))

    def _require_qualifier(self) -> str:
        if not self.qualifier:
            raise UsageError(f"{self.name}: provisioned concurrency needs an alias or version",
                             "set qualifier: <alias> for the agent in config/agents.yaml")
        return self.qualifier

    def _provisioned(self):
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_provisioned_concurrency_config(FunctionName=self.function,
                                                                    Qualifier=self._require_qualifier())
        except ClientError as error:
            if aws.is_error(error, "ProvisionedConcurrencyConfigNotFoundException"):
                return None
            raise aws.translate(error, f"{self.name}: read provisioned concurrency") from error
        return answer.get("RequestedProvisionedConcurrentExecutions")

    def _set_provisioned(self, value) -> None:
        qualifier = self._require_qualifier()
        if value:
            self._call("set provisioned concurrency of", "put_provisioned_concurrency_config",
                       FunctionName=self.function, Qualifier=qualifier, ProvisionedConcurrentExecutions=int(value))
        elif self._provisioned() is not None:
            self._call("remove provisioned concurrency of", "delete_provisioned_concurrency_config",
                       FunctionName=self.function, Qualifier=qualifier)

    def scale(self, instances: int, provisioned: bool = False) -> tuple:
        if provisioned:
            old = self._provisioned()
            self._set_provisioned(instances)
        else:
            old = self._reserved()
            self._set_reserved(instances)
        return old, instances

    def capacity(self) -> dict:
        capacity = {"reserved": self._reserved()}
        if self.qualifier:
            capacity["provisioned"] = self._provisioned()
        return capacity

    def is_stopped(self, capacity: dict) -> bool:
        return capacity.get("reserved") == 0

    def stop(self) -> dict:
        before = self.capacity()
        if before.get("provisioned"):
            self._set_provisioned(None)  # provisioned concurrency may not exceed the reserved 0
        self._set_reserved(0)
        return before

    def start(self, capacity: dict) -> None:
        self._set_reserved(capacity.get("reserved"))
        if capacity.get("provisioned"):
            self._set_provisioned(capacity["provisioned"])

    # ---- tags -----------------------------------------------------------------------------
    def arn(self) -> str:
        return self._function()["Configuration"]["FunctionArn"]

    def tags(self) -> dict:
        return dict(self._call("list the tags of", "list_tags", Resource=self.arn()).get("Tags", {}))

    def set_tag(self, key: str, value: str) -> None:
        self._call("tag", "tag_resource", Resource=self.arn(), Tags={key: value})

    def remove_tag(self, key: str) -> None:
        self._call("untag", "untag_resource", Resource=self.arn(), TagKeys=[key])

    # ---- usage ----------------------------------------------------------------------------
    def _account_pool(self) -> int | None:
        """The account's unreserved concurrency; None when this identity may not read it."""

        try:
            settings = self._call("read account settings for", "get_account_settings")
        except ToolError:
            return None
        return settings.get("AccountLimit", {}).get("UnreservedConcurrentExecutions")

    def usage(self, window: timedelta = timedelta(hours=1)) -> list[dict]:
        config = self._call("read", "get_function_configuration", FunctionName=self.function)
        reserved = self._reserved()
        limit = self._account_pool() if reserved is None else reserved
        dims = {"FunctionName": self.function}
        now = timeparse.utcnow()
        stats = aws.metric_stats({
            "invocations": ("AWS/Lambda", "Invocations", dims, "Sum"),
            "errors": ("AWS/Lambda", "Errors", dims, "Sum"),
            "throttles": ("AWS/Lambda", "Throttles", dims, "Sum"),
            "max": ("AWS/Lambda", "Duration", dims, "Maximum"),
            "concurrency": ("AWS/Lambda", "ConcurrentExecutions", dims, "Maximum"),
        }, now - window, now, 60)
        stats.update(aws.percentiles("AWS/Lambda", "Duration", dims, now - window, now))
        invocations = stats["invocations"] or 0
        errors = stats["errors"] or 0
        timeout_ms = config.get("Timeout", 3) * 1000
        error_share = errors / invocations if invocations else 0
        rows = [
            figure("invocations", int(invocations)),
            figure("errors", int(errors), unit="", warn=error_share > 0.05,
                   note=f"{error_share:.0%} of invocations" if invocations else ""),
            figure("throttles", int(stats["throttles"] or 0), warn=bool(stats["throttles"]),
                   note="raise the concurrency: scale_agent.py" if stats["throttles"] else ""),
        ]
        for key in ("p50", "p99", "max"):
            rows.append(figure(f"duration {key}", _round(stats[key]), timeout_ms, "ms", near(stats[key], timeout_ms),
                               "nears the timeout" if near(stats[key], timeout_ms) else ""))
        rows.append(figure("concurrency max", _round(stats["concurrency"]), limit, "",
                           near(stats["concurrency"], limit),
                           "nears its limit" if near(stats["concurrency"], limit) else
                           ("reserved" if reserved is not None else
                            "unreserved: account pool" if limit else "unreserved: account limit unknown")))
        rows.append(figure("memory size", config.get("MemorySize"), unit="MB"))
        return rows


def _function_error(body: bytes) -> tuple[str, str]:
    """(errorType, errorMessage) of a failed invocation's payload; empty strings when it has none."""
    try:
        document = json.loads(body)
    except ValueError:
        return "", mask_secrets(body.decode(errors="replace").strip())[:300]
    if not isinstance(document, dict):
        return "", mask_secrets(str(document))[:300]
    return str(document.get("errorType") or ""), mask_secrets(str(document.get("errorMessage") or ""))[:300]


def _round(value):
    return None if value is None else round(value, 1)
