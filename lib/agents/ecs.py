"""The ecs runtime: an agent that is an ECS service (DESIGN §8).

Scale, stop and start set the desired count; restart forces a new deployment and waits
for a steady state (one deployment, running = desired). ECS has no synchronous call.
"""

from __future__ import annotations

from datetime import timedelta

from lib import config, timeparse
from lib.adapters import aws
from lib.agents.aws_base import AwsRuntime, figure, near
from lib.errors import UsageError

STEADY_TIMEOUT_SECONDS = 600


class EcsRuntime(AwsRuntime):
    api = "ecs"

    def __init__(self, agent: dict):
        super().__init__(agent)
        self.cluster = agent.get("cluster") or config.settings()["aws"]["ecs_cluster"]
        self.service = agent.get("service") or agent["name"]
        self.steady_timeout = float(agent.get("restart_timeout_seconds") or STEADY_TIMEOUT_SECONDS)

    def resource(self) -> str:
        return f"ECS service {self.cluster}/{self.service}"

    def describe(self) -> dict:
        answer = self._call("read", "describe_services", cluster=self.cluster, services=[self.service],
                            include=["TAGS"])
        services = [s for s in answer.get("services", []) if s.get("status") != "INACTIVE"]
        if not services:
            raise aws.AWSNotFound(f"{self.name}: ECS service {self.cluster}/{self.service} not found",
                                  f"check cluster and service in config/agents.yaml (aws ecs list-services "
                                  f"--cluster {self.cluster})")
        return services[0]

    # ---- status ---------------------------------------------------------------------------
    def failed_tasks_last_hour(self) -> int:
        """Tasks of the service that stopped in the last hour with an error exit or failed to start."""
        arns = self._call("list the stopped tasks of", "list_tasks", cluster=self.cluster,
                          serviceName=self.service, desiredStatus="STOPPED").get("taskArns", [])
        if not arns:
            return 0
        since = timeparse.utcnow() - timedelta(hours=1)
        tasks = self._call("read the tasks of", "describe_tasks", cluster=self.cluster, tasks=arns[:100])["tasks"]
        return sum(1 for task in tasks if task.get("stoppedAt") and task["stoppedAt"] >= since and _failed(task))

    def status(self) -> dict:
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

    # ---- operations -----------------------------------------------------------------------
    def restart(self) -> str:
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
        old = self._desired()
        self._set_desired(instances)
        return old, instances

    def capacity(self) -> dict:
        return {"desired": self._desired()}

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


def _failed(task: dict) -> bool:
    if task.get("stopCode") == "TaskFailedToStart":
        return True
    return any(c.get("exitCode") not in (None, 0) for c in task.get("containers", []))
