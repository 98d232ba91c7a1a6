"""optimize_resources.py: findings about the project's AWS resources, each with its fix.

Always: Lambda memory far above the memory actually used (REPORT lines of the last week),
log groups that keep events forever, reserved concurrency nobody used for a week.
With aggressive: ECS services idle for a day are stopped the way stop_all_agents.py stops
them (so start_all_agents.py brings them back), and standalone ECS tasks running past
TIMEOUT_SECONDS are stopped. A dry run lists the findings and changes nothing.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

from lib import agents, config, timeparse
from lib.adapters import aws
from lib.agents import fleet
from lib.agents.aws_lambda import LambdaRuntime
from lib.agents.ecs import EcsRuntime
from lib.backup import log_archive
from lib.errors import ToolError

LOOKBACK = timedelta(days=7)
IDLE_WINDOW = timedelta(days=1)
IDLE_CPU_PERCENT = 1.0
MEMORY_HEADROOM = 1.5
MIN_MEMORY_MB = 128
_MAX_MEMORY = re.compile(r"Max Memory Used: (\d+) MB")

COLUMNS = [("kind", "KIND"), ("resource", "RESOURCE"), ("finding", "FINDING"), ("fix", "FIX"), ("result", "RESULT")]


class Finding(dict):
    """A row: kind, resource, finding, fix, result; `apply` makes the fix."""

    def __init__(self, kind: str, resource: str, finding: str, fix: str, apply, aggressive: bool = False):
        super().__init__(kind=kind, resource=resource, finding=finding, fix=fix, result="")
        self.apply = apply
        self.aggressive = aggressive


def max_memory_used(function: str, since) -> int | None:
    """The largest `Max Memory Used` of the function's REPORT lines since then (MB)."""
    logs = aws.client("logs")
    try:
        with aws.aws_errors(f"read the REPORT lines of {function}"):
            events = aws.paginate(logs, "filter_log_events", "events", logGroupName=f"/aws/lambda/{function}",
                                  startTime=int(since.timestamp() * 1000), filterPattern='"Max Memory Used"')
    except aws.AWSNotFound:
        return None
    used = [int(m.group(1)) for e in events if (m := _MAX_MEMORY.search(e.get("message", "")))]
    return max(used) if used else None


def _lambda_findings(agent: dict, now) -> list[Finding]:

    runtime = LambdaRuntime(agent)
    fn = runtime.function
    lam = aws.client("lambda")
    found = []
    with aws.aws_errors(f"read Lambda function {fn}"):
        config = lam.get_function_configuration(FunctionName=fn)
    memory = config.get("MemorySize", MIN_MEMORY_MB)
    used = max_memory_used(fn, now - LOOKBACK)
    if used is not None and memory > MIN_MEMORY_MB and used * 2 < memory:
        target = max(MIN_MEMORY_MB, math.ceil(used * MEMORY_HEADROOM / 64) * 64)
        if target < memory:
            def shrink(fn=fn, target=target):
                with aws.aws_errors(f"set the memory of {fn}"):
                    lam.update_function_configuration(FunctionName=fn, MemorySize=target)
            found.append(Finding("lambda memory", fn, f"{memory} MB configured, at most {used} MB used in 7 days",
                                 f"set memory to {target} MB (CPU scales with it)", shrink))
    reserved = runtime.capacity()["reserved"]
    if reserved:
        invocations = aws.metric_stats({"n": ("AWS/Lambda", "Invocations", {"FunctionName": fn}, "Sum")},
                                       now - LOOKBACK, now, 86400)["n"]
        if not invocations:
            def release(fn=fn):
                with aws.aws_errors(f"release the reserved concurrency of {fn}"):
                    lam.delete_function_concurrency(FunctionName=fn)
            found.append(Finding("idle reserved concurrency", fn, f"{reserved} reserved, no invocation in 7 days",
                                 "release it to the account pool", release))
    return found


def _retention_findings() -> list[Finding]:
    days = log_archive.retention_days()
    return [Finding("log retention", group["logGroupName"], "events are kept forever", f"keep {days} days",
                    lambda name=group["logGroupName"]: log_archive.apply_retention(name, days))
            for group in log_archive.project_log_groups() if group.get("retentionInDays") is None]


def _ecs_findings(agent: dict, now, store) -> list[Finding]:

    runtime = EcsRuntime(agent)
    if not runtime.service:
        return []  # a task agent runs only while a phase needs it; overdue tasks are found below
    service = runtime.describe()
    if not service.get("desiredCount"):
        return []
    cpu = aws.metric_stats({"cpu": ("AWS/ECS", "CPUUtilization",
                                    {"ClusterName": runtime.cluster, "ServiceName": runtime.service}, "Maximum")},
                           now - IDLE_WINDOW, now, 3600)["cpu"]
    if cpu is not None and cpu >= IDLE_CPU_PERCENT:
        return []

    def scale_down(agent=agent):
        row = fleet.stop_all([agent], store, dry_run=False)[0]
        if not row["ok"]:
            raise ToolError(row["detail"])
    shown = "no CPU data" if cpu is None else f"CPU at most {cpu:.1f}%"
    return [Finding("idle ECS service", f"{runtime.cluster}/{runtime.service}",
                    f"{service['desiredCount']} tasks wanted, {shown} in 24 h",
                    "scale to 0 (start_all_agents.py restores it)", scale_down, aggressive=True)]


def task_limit() -> timedelta:
    return timedelta(seconds=config.phase_timeout())


def _overdue_task_findings(clusters: set[str], now) -> list[Finding]:
    ecs = aws.client("ecs")
    limit = task_limit()
    found = []
    for cluster in sorted(clusters):
        with aws.aws_errors(f"list the tasks of cluster {cluster}"):
            arns = aws.paginate(ecs, "list_tasks", "taskArns", cluster=cluster, desiredStatus="RUNNING")
            tasks = [t for i in range(0, len(arns), 100)
                     for t in ecs.describe_tasks(cluster=cluster, tasks=arns[i:i + 100])["tasks"]]
        for task in tasks:
            started = task.get("startedAt")
            if str(task.get("startedBy", "")).startswith("ecs-svc/") or not started or now - started <= limit:
                continue  # service tasks are the service's; without a start time the age is unknown

            def stop(cluster=cluster, arn=task["taskArn"]):
                with aws.aws_errors(f"stop task {arn}"):
                    ecs.stop_task(cluster=cluster, task=arn, reason="optimize_resources.py: past its time limit")
            age = int((now - started).total_seconds() // 60)
            found.append(Finding("overdue ECS task", task["taskArn"].rsplit("/", 1)[-1],
                                 f"running {age} min, limit {int(limit.total_seconds() // 60)} min (TIMEOUT_SECONDS)",
                                 "stop the task", stop, aggressive=True))
    return found


def findings(store) -> list[Finding]:
    now = timeparse.utcnow()
    registry = agents.registry()
    aws_agents = [a for a in registry if a["runtime"] in ("lambda", "ecs")]
    fleet.prepare(aws_agents, "look for savings")
    found: list[Finding] = []
    for agent in aws_agents:
        if agent["runtime"] == "lambda":
            found += _lambda_findings(agent, now)
        else:
            found += _ecs_findings(agent, now, store)
    found += _retention_findings()
    clusters = {agents.runtime(a).cluster for a in aws_agents if a["runtime"] == "ecs"}
    found += _overdue_task_findings(clusters, now)
    return found


def optimize(store, aggressive: bool, dry_run: bool) -> list[Finding]:
    """Find, then fix what the mode allows; each fix's failure stays in its row."""
    found = findings(store)
    for item in found:
        if item.aggressive and not aggressive:
            item["result"] = "needs --aggressive"
        elif dry_run:
            item["result"] = "would fix"
        else:
            try:
                item.apply()
                item["result"] = "fixed"
            except ToolError as failure:
                item["result"] = f"failed: {failure}"
    return found
