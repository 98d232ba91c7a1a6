"""The ecs runtime: an agent that runs one ECS task per phase, or a long-running ECS service (DESIGN §5, §8).

A task agent (`task_definition`, `container`) takes a phase: each call writes the input
document to s3://<backup bucket>/agent-io/<task id>/input.json, runs one task whose
container finds it in TDEV_TASK_INPUT_S3, waits for the task to stop and reads the
output.json the task left beside it (TDEV_TASK_OUTPUT_S3). A service agent (no
task_definition) cannot take a phase; for a service, scale, stop and start set the
desired count and restart forces a new deployment and waits for a steady state.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

from lib import config, timeparse
from lib.adapters import aws
from lib.agents import AgentError, Unsupported
from lib.agents.aws_base import AwsRuntime, figure, near, parse_output
from lib.errors import ConfigError, ToolError, UsageError

STEADY_TIMEOUT_SECONDS = 600
#: how often a task agent's call asks ECS whether the task stopped (agents.yaml poll_seconds overrides it)
POLL_SECONDS = 5.0
IO_PREFIX = "agent-io"


class EcsRuntime(AwsRuntime):
    api = "ecs"

    def __init__(self, agent: dict):
        super().__init__(agent)
        self.cluster = agent.get("cluster") or config.settings()["aws"]["ecs_cluster"]
        self.task_definition = agent.get("task_definition")
        self.container = agent.get("container")
        self.subnets = list(agent.get("subnets") or [])
        self.security_groups = list(agent.get("security_groups") or [])
        if self.task_definition and not self.container:
            raise ConfigError(f"agent {self.name}: an ecs agent with task_definition needs container",
                              "name the container that reads TDEV_TASK_INPUT_S3 in config/agents.yaml")
        if self.security_groups and not self.subnets:
            raise ConfigError(f"agent {self.name}: security_groups need subnets (awsvpc network)",
                              "add subnets to the agent in config/agents.yaml")
        # a task agent has no service unless it names one; an agent without a task definition is a service
        self.service = agent.get("service") or (None if self.task_definition else agent["name"])
        self.poll_seconds = max(0.0, float(agent.get("poll_seconds", POLL_SECONDS)))
        self.steady_timeout = float(agent.get("restart_timeout_seconds") or STEADY_TIMEOUT_SECONDS)

    def resource(self) -> str:
        if self.service:
            return f"ECS service {self.cluster}/{self.service}"
        return f"ECS task definition {self.task_definition} on cluster {self.cluster}"

    def _require_service(self, action: str) -> str:
        if not self.service:
            raise Unsupported(f"{self.name}: cannot {action} an ECS task agent: each phase runs a fresh task of "
                              f"{self.task_definition}", "register a new revision of the task definition to change it")
        return self.service

    def describe(self) -> dict:
        service_name = self._require_service("describe the service of")
        answer = self._call("read", "describe_services", cluster=self.cluster, services=[service_name],
                            include=["TAGS"])
        services = [s for s in answer.get("services", []) if s.get("status") != "INACTIVE"]
        if not services:
            raise aws.AWSNotFound(f"{self.name}: ECS service {self.cluster}/{service_name} not found",
                                  f"check cluster and service in config/agents.yaml (aws ecs list-services "
                                  f"--cluster {self.cluster})")
        return services[0]

    def task_definition_arn(self) -> str:
        """The task definition the agent runs: its own, else its service's."""
        return self.task_definition or self.describe()["taskDefinition"]

    # ---- the agent contract ---------------------------------------------------------------
    def cannot_take_phase(self) -> str:
        if self.task_definition:
            return ""
        return (f"ECS service {self.cluster}/{self.service} is long-running and has no task_definition: "
                f"a phase needs one task per call")

    def invoke(self, payload: dict, timeout: float) -> dict:
        """Input to S3, RunTask, wait for STOPPED within the timeout, output from S3."""
        problem = self.cannot_take_phase()
        if problem:
            raise AgentError(f"agent-error: {self.name}: {problem}",
                             "set task_definition and container for the agent in config/agents.yaml")
        deadline = time.monotonic() + timeout
        bucket, folder = config.backup_bucket(), f"{IO_PREFIX}/{payload['task_id']}"
        urls = {name: f"s3://{bucket}/{folder}/{name}.json" for name in ("input", "output")}
        with self.agent_errors(f"run a task of {self.task_definition} on cluster {self.cluster}", None):
            aws.upload_bytes(json.dumps(payload).encode(), bucket, f"{folder}/input.json")
            # a task run again under the same id must not read the answer of an earlier run
            aws.client("s3").delete_object(Bucket=bucket, Key=f"{folder}/output.json")
            task_arn = self._run_task(payload, urls)
            task = self._wait_stopped(task_arn, max(0.0, deadline - time.monotonic()), timeout)
            body = _read_object(bucket, f"{folder}/output.json")
        if body is None:
            raise self._no_output(task, urls["output"])
        return parse_output(body, self.name, f"ECS task {_short(task_arn)}")

    def _run_task(self, payload: dict, urls: dict) -> str:
        environment = {"TDEV_TASK_INPUT_S3": urls["input"], "TDEV_TASK_OUTPUT_S3": urls["output"],
                       "TDEV_EVOLUTION_ID": str(payload.get("evolution_id", "")),
                       "TDEV_TASK_ID": str(payload["task_id"])}
        params = {"cluster": self.cluster, "taskDefinition": self.task_definition, "count": 1,
                  "startedBy": str(payload["task_id"]),  # list-tasks --started-by <task id> finds it
                  "overrides": {"containerOverrides": [{
                      "name": self.container,
                      "environment": [{"name": key, "value": value} for key, value in environment.items()]}]}}
        if self.agent.get("launch_type"):
            params["launchType"] = self.agent["launch_type"]
        if self.subnets:
            network = {"subnets": self.subnets}
            if self.security_groups:
                network["securityGroups"] = self.security_groups
            params["networkConfiguration"] = {"awsvpcConfiguration": network}
        answer = self._call("run a task of", "run_task", **params)
        if not answer.get("tasks"):
            reasons = "; ".join(f"{f.get('reason', '?')} {f.get('detail') or f.get('arn') or ''}".strip()
                                for f in answer.get("failures", [])) or "no task and no reason given"
            raise AgentError(f"agent-error: {self.name}: ECS did not start a task of {self.task_definition} "
                             f"on cluster {self.cluster}: {reasons}",
                             "check the cluster's capacity, launch_type and subnets in config/agents.yaml")
        return answer["tasks"][0]["taskArn"]

    def _describe_task(self, task_arn: str) -> dict:
        tasks = self._call("read the task of", "describe_tasks", cluster=self.cluster, tasks=[task_arn])["tasks"]
        if not tasks:
            raise aws.AWSNotFound(f"{self.name}: ECS task {_short(task_arn)} not found on cluster {self.cluster}")
        return tasks[0]

    def _wait_stopped(self, task_arn: str, remaining: float, timeout: float) -> dict:
        """The task once STOPPED; past the phase timeout the task is stopped and the call fails with timeout:."""
        try:
            return aws.wait_for(lambda: self._describe_task(task_arn), lambda t: t.get("lastStatus") == "STOPPED",
                                remaining, f"{self.name}: ECS task {_short(task_arn)}", interval=self.poll_seconds)
        except aws.WaitTimeout:
            try:
                self._call("stop the task of", "stop_task", cluster=self.cluster, task=task_arn,
                           reason=f"t-developer: phase timeout of {timeout:g}s")
                stopped = "stopped it"
            except ToolError as failure:
                stopped = f"could not stop it: {failure.message}"
            raise AgentError(f"timeout: {self.name}: ECS task {_short(task_arn)} did not finish within "
                             f"{timeout:g}s ({stopped})") from None

    def _no_output(self, task: dict, output_url: str) -> AgentError:
        """Why a stopped task left no output: its stoppedReason and its container's exit code."""
        container = next((c for c in task.get("containers", []) if c.get("name") == self.container), {})
        code = container.get("exitCode")
        kind = "agent-error" if code is None else "exit-code" if code != 0 else "bad-output"
        reason = task.get("stoppedReason") or container.get("reason") or "no reason given"
        return AgentError(f"{kind}: {self.name}: ECS task {_short(task['taskArn'])} stopped without writing "
                          f"{output_url} (stopped: {reason}; container {self.container} exit code "
                          f"{'none' if code is None else code})",
                          f"see the task's logs (aws ecs describe-tasks --cluster {self.cluster} --tasks "
                          f"{task['taskArn']})")

    # ---- status ---------------------------------------------------------------------------
    def failed_tasks_last_hour(self) -> int:
        """Tasks of the service (of the task definition's family for a task agent) that stopped in
        the last hour with an error exit or failed to start."""
        source = {"serviceName": self.service} if self.service else {"family": _family(self.task_definition)}
        arns = self._call("list the stopped tasks of", "list_tasks", cluster=self.cluster,
                          desiredStatus="STOPPED", **source).get("taskArns", [])
        if not arns:
            return 0
        since = timeparse.utcnow() - timedelta(hours=1)
        tasks = self._call("read the tasks of", "describe_tasks", cluster=self.cluster, tasks=arns[:100])["tasks"]
        return sum(1 for task in tasks if task.get("stoppedAt") and task["stoppedAt"] >= since and _failed(task))

    def status(self) -> dict:
        if not self.service:
            return self._task_status()
        service = self.describe()
        desired, running = service.get("desiredCount", 0), service.get("runningCount", 0)
        deployments = service.get("deployments", [])
        if desired == 0:
            state = "stopped"
        elif len(deployments) > 1 or any(d.get("rolloutState") == "IN_PROGRESS" for d in deployments):
            state = "deploying"
        else:
            state = "running" if running >= desired else "degraded"
        updated = max((d.get("updatedAt") for d in deployments if d.get("updatedAt")), default=None)
        task_definition = service.get("taskDefinition", "").rsplit("/", 1)[-1]
        return {
            "state": state,
            "version": f"{task_definition} {timeparse.iso(updated) if updated else ''}".strip(),
            "capacity": f"{running}/{desired} running",
            "errors_last_hour": self.failed_tasks_last_hour(),
            "detail": (service.get("events") or [{}])[0].get("message", "")[:120],
        }

    def _task_status(self) -> dict:
        """A task agent: its task definition's state; capacity is one task per phase call."""
        definition = self._call("read", "describe_task_definition",
                                taskDefinition=self.task_definition)["taskDefinition"]
        active = definition.get("status") == "ACTIVE"
        return {
            "state": "available" if active else str(definition.get("status", "")).lower(),
            "version": f"{definition['family']}:{definition['revision']}",
            "capacity": "one task per call",
            "errors_last_hour": self.failed_tasks_last_hour(),
            "detail": "" if active else "the task definition is not active: register a new revision",
        }

    # ---- operations -----------------------------------------------------------------------
    def restart(self) -> str:
        self._require_service("restart")
        self._call("force a new deployment of", "update_service", cluster=self.cluster, service=self.service,
                   forceNewDeployment=True)
        aws.wait_for(self.describe, _steady, self.steady_timeout,
                     f"{self.name}: new deployment of {self.cluster}/{self.service} reaching a steady state")
        return "new deployment, steady state reached"

    def _desired(self) -> int:
        return self.describe().get("desiredCount", 0)

    def _set_desired(self, count: int) -> None:
        self._call("scale", "update_service", cluster=self.cluster, service=self.service, desiredCount=int(count))

    def scale(self, instances: int, provisioned: bool = False) -> tuple:
        if provisioned:
            raise UsageError("--provisioned applies to Lambda agents only", "drop --provisioned for an ECS agent")
        self._require_service("scale")
        old = self._desired()
        self._set_desired(instances)
        return old, instances

    def capacity(self) -> dict | None:
        """The service's desired count; None for a task agent, which has no capacity to stop or start."""
        return {"desired": self._desired()} if self.service else None

    def is_stopped(self, capacity: dict) -> bool:
        return not capacity.get("desired")

    def stop(self) -> dict:
        before = self.capacity()
        self._set_desired(0)
        return before

    def start(self, capacity: dict) -> None:
        self._set_desired(capacity.get("desired") or 0)

    # ---- tags -----------------------------------------------------------------------------
    def arn(self) -> str:
        return self.describe()["serviceArn"]

    def tags(self) -> dict:
        answer = self._call("list the tags of", "list_tags_for_resource", resourceArn=self.arn())
        return aws.tags_to_dict(answer.get("tags", []))

    def set_tag(self, key: str, value: str) -> None:
        self._call("tag", "tag_resource", resourceArn=self.arn(), tags=[{"key": key, "value": value}])

    def remove_tag(self, key: str) -> None:
        self._call("untag", "untag_resource", resourceArn=self.arn(), tagKeys=[key])

    # ---- usage ----------------------------------------------------------------------------
    def usage(self, window: timedelta = timedelta(hours=1)) -> list[dict]:
        self._require_service("measure")
        service = self.describe()
        dims = {"ClusterName": self.cluster, "ServiceName": self.service}
        now = timeparse.utcnow()
        stats = aws.metric_stats({
            "cpu_avg": ("AWS/ECS", "CPUUtilization", dims, "Average"),
            "cpu_max": ("AWS/ECS", "CPUUtilization", dims, "Maximum"),
            "mem_avg": ("AWS/ECS", "MemoryUtilization", dims, "Average"),
            "mem_max": ("AWS/ECS", "MemoryUtilization", dims, "Maximum"),
        }, now - window, now, 60)
        rows = []
        for key, label in (("cpu_avg", "cpu average"), ("cpu_max", "cpu max"),
                           ("mem_avg", "memory average"), ("mem_max", "memory max")):
            value = None if stats[key] is None else round(stats[key], 1)
            rows.append(figure(label, value, 100, "%", near(value, 100), "nears its limit" if near(value, 100) else ""))
        desired, running = service.get("desiredCount", 0), service.get("runningCount", 0)
        rows.append(figure("running tasks", running, desired, "", running < desired,
                           f"{desired - running} short of desired" if running < desired else ""))
        return rows


def _steady(service: dict) -> bool:
    deployments = service.get("deployments", [])
    return len(deployments) <= 1 and service.get("runningCount", 0) == service.get("desiredCount", 0)


def _family(task_definition: str) -> str:
    """The family of a task definition given as family, family:revision or an ARN."""
    return task_definition.rsplit("/", 1)[-1].split(":")[0]


def _short(task_arn: str) -> str:
    return task_arn.rsplit("/", 1)[-1]


def _read_object(bucket: str, key: str) -> bytes | None:
    """The object's bytes; None when there is none."""
    try:
        with aws.aws_errors(f"read s3://{bucket}/{key}"):
            return aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except aws.AWSNotFound:
        return None


def _failed(task: dict) -> bool:
    if task.get("stopCode") == "TaskFailedToStart":
        return True
    return any(c.get("exitCode") not in (None, 0) for c in task.get("containers", []))
