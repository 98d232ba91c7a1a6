"""ECS Fargate for the moto server: runs on this machine the tasks that Step Functions starts in moto.

moto records a RunTask (with its overrides) and keeps the task RUNNING (the test sets the `ecs::task` state
transition to manual) until StopTask; the `.sync` step of the execution polls DescribeTasks until then
(moto_ecs_sync.py makes that step work). This stand-in is the container runtime moto lacks:

- every RUNNING task of the cluster that it has not seen is started as a local process: the container command
  of the task's overrides (`python` is this interpreter, as the image's), from the project root, with the test's
  environment plus the overrides' environment and a history folder of its own (a fresh container);
- its stdout goes to the task's CloudWatch log stream, as the awslogs driver ships it;
- when the process ends, its exit code is set on moto's container (moto has no API for what the ECS agent
  reports) and the task is stopped with StopTask: the `.sync` step ends and the Choice reads the exit code;
- when the task's execution is no longer RUNNING (StopExecution), the process gets SIGTERM and, 30 s later,
  SIGKILL, as ECS does when Step Functions stops the task;
- `crash` ids are killed with SIGKILL once their runner has claimed the record (an OOM kill): exit code 137.

Each run is recorded: evolution id, task ARN, when the task was seen and the process started, exit code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import moto_ecs_sync

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, REGION = "123456789012", "us-east-1"
ECS_STOP_TIMEOUT = 30.0


class FargateStandIn:
    def __init__(self, env: dict, cluster: str, machine_arn: str, base: Path, crash: tuple[str, ...] = ()):
        self.env = env
        self.cluster = cluster
        self.machine_arn = machine_arn
        self.base = base
        self.crash = set(crash)
        self.runs: dict[str, dict] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fargate-standin", daemon=True)
        kwargs = {"endpoint_url": env["AWS_ENDPOINT_URL"], "region_name": REGION,
                  "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        self.ecs = boto3.client("ecs", **kwargs)
        self.sfn = boto3.client("stepfunctions", **kwargs)
        self.dynamodb = boto3.client("dynamodb", **kwargs)
        self.logs = boto3.client("logs", **kwargs)

    def start(self) -> FargateStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        for run in self.runs.values():
            if run["process"].poll() is None:
                run["process"].kill()
                run["process"].wait()

    # ---- the loop ------------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            arns = self.ecs.list_tasks(cluster=self.cluster, desiredStatus="RUNNING").get("taskArns", [])
            for arn in arns:
                if arn not in self.runs:
                    self._launch(arn)
            for arn, run in list(self.runs.items()):
                if run["ended"]:
                    continue
                code = run["process"].poll()
                self._ship(run)
                if code is None:
                    self._watch(run)
                else:
                    self._finish(arn, run, code)
            self._stop.wait(0.1)

    def _launch(self, arn: str) -> None:
        seen = time.time()
        task = self.ecs.describe_tasks(cluster=self.cluster, tasks=[arn])["tasks"][0]
        override = task["overrides"]["containerOverrides"][0]
        command = [sys.executable if part == "python" else part for part in override["command"]]
        environment = {item["name"]: item["value"] for item in override.get("environment", [])}
        home = self.base / "containers" / arn.rsplit("/", 1)[-1]
        home.mkdir(parents=True)
        env = {**self.env, **environment, "TDEV_HISTORY_DIR": str(home / "history")}
        with open(home / "stdout.log", "wb") as out:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        self.runs[arn] = {"evolution_id": environment["TDEV_EVOLUTION_ID"], "process": process, "seen": seen,
                          "started": time.time(), "home": home, "ended": False, "exit_code": None,
                          "sigterm_at": None, "shipped": 0, "stream": self._stream(task, arn)}

    def _stream(self, task: dict, arn: str) -> tuple[str, str] | None:
        """The awslogs group and stream of the task's container (what the awslogs driver would write), made."""
        definition = self.ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
        options = (definition["containerDefinitions"][0].get("logConfiguration") or {}).get("options") or {}
        if "awslogs-group" not in options:
            return None
        group = options["awslogs-group"]
        stream = f"{options['awslogs-stream-prefix']}/{definition['containerDefinitions'][0]['name']}/" \
                 f"{arn.rsplit('/', 1)[-1]}"
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_group(logGroupName=group)
        self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        return group, stream

    def _ship(self, run: dict) -> None:
        """The container's new complete stdout lines to its log stream, as the awslogs driver does."""
        if not run["stream"]:
            return
        with open(run["home"] / "stdout.log", "rb") as handle:
            handle.seek(run["shipped"])
            chunk = handle.read()
        complete = chunk[:chunk.rfind(b"\n") + 1]
        if not complete:
            return
        run["shipped"] += len(complete)
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line} for line in complete.decode(errors="replace").splitlines()
                  if line]
        if events:
            self.logs.put_log_events(logGroupName=run["stream"][0], logStreamName=run["stream"][1], logEvents=events)

    def _watch(self, run: dict) -> None:
        """SIGTERM when the execution was stopped (then SIGKILL after ECS's stop timeout); SIGKILL a crash id
        once its runner has claimed the record."""
        evolution_id = run["evolution_id"]
        if evolution_id in self.crash and self._claimed(evolution_id):
            os.killpg(run["process"].pid, signal.SIGKILL)
            return
        if run["sigterm_at"] is None:
            execution = self.machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{evolution_id}"
            if self.sfn.describe_execution(executionArn=execution)["status"] != "RUNNING":
                run["sigterm_at"] = time.monotonic()
                run["process"].send_signal(signal.SIGTERM)
        elif time.monotonic() - run["sigterm_at"] > ECS_STOP_TIMEOUT:
            os.killpg(run["process"].pid, signal.SIGKILL)

    def _claimed(self, evolution_id: str) -> bool:
        table = self.env["TDEV_STATE_TABLE"]
        item = self.dynamodb.get_item(TableName=table, Key={"pk": {"S": f"evolution#{evolution_id}"}},
                                      ConsistentRead=True).get("Item", {})
        return item.get("status", {}).get("S") == "running"

    def _finish(self, arn: str, run: dict, code: int) -> None:
        from moto.ecs.models import ecs_backends

        exit_code = 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a container reports
        task = ecs_backends[ACCOUNT][REGION].tasks[self.cluster][arn]
        task.containers[0].exitCode = exit_code
        self.ecs.stop_task(cluster=self.cluster, task=arn, reason=f"Essential container exited ({exit_code})")
        run.update(ended=True, exit_code=exit_code)


def post(endpoint: str, path: str, document) -> None:
    import json
    import urllib.request

    request = urllib.request.Request(f"{endpoint}{path}", data=json.dumps(document).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


def prepare(endpoint: str, cluster: str) -> dict:
    """The moto server (running in this process) set for the executor: Step Functions execution on, its ECS
    .sync integration working, ECS tasks RUNNING until stopped; a cluster, the runner's task definition, a
    subnet and a security group. {subnet, security_group}. MOTO_PORT must name the server's port (moto's
    interpreter calls ECS there)."""
    moto_ecs_sync.enable()
    post(endpoint, "/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})
    post(endpoint, "/moto-api/state-manager/set-transition",
         {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}})
    kwargs = {"endpoint_url": endpoint, "region_name": REGION, "aws_access_key_id": "testing",
              "aws_secret_access_key": "testing"}
    ecs, ec2 = boto3.client("ecs", **kwargs), boto3.client("ec2", **kwargs)
    ecs.create_cluster(clusterName=cluster)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="runner", Description="runner", VpcId=vpc)["GroupId"]
    # EC2-compatible with bridge networking: moto's awsvpc task set-up fails (an ENI attribute it lacks), and
    # the network mode is not what the executor's tests are about
    ecs.register_task_definition(
        family="t-developer-runner", requiresCompatibilities=["EC2"], networkMode="bridge",
        containerDefinitions=[{"name": "runner", "image": "t-developer:test", "memory": 512, "logConfiguration": {
            "logDriver": "awslogs", "options": {"awslogs-group": "/t-developer/runner",
                                                "awslogs-stream-prefix": "evolution"}}}])
    return {"subnet": subnet, "security_group": group}


def restore(endpoint: str) -> None:
    """Undo prepare's switches (the server is shared by the session)."""
    post(endpoint, "/moto-api/config", {"stepfunctions": {"execute_state_machine": False}})
    post(endpoint, "/moto-api/state-manager/unset-transition", {"model_name": "ecs::task"})
