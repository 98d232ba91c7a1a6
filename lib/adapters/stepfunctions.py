"""Step Functions and the ECS Fargate task behind it: the stepfunctions executor's AWS calls (DESIGN §10).

The state machine runs one Fargate task per evolution through `arn:aws:states:::ecs:runTask.sync`; the task runs
`python -m lib.evolution.worker <evolution id>` against the shared DynamoDB store. What is retried, and why:

- the RunTask step's `Retry` (full jitter) names `ECS.AmazonECSException` (what Step Functions raises when RunTask
  is refused: "Capacity is unavailable at this time", RESOURCE:* placement failures, "Rate exceeded"),
  `ECS.ServerException` (ECS 5xx) and `ECS.ThrottlingException`. Never `States.TaskFailed` or `States.ALL`: those
  match every error of the step, not only infrastructure ones.
- a task that stopped before its container ran (StopCode `TaskFailedToStart`: no Fargate capacity in the zone,
  an image pull or ENI that failed) is started again after a wait, at most START_ATTEMPTS times in all.
- a runner that ran and exited non-zero is the evolution's own failure: the execution fails at once and is never
  retried (the record says why; a second run would start a second evolution's work on the same target).
"""

from __future__ import annotations

import json

from lib.adapters import aws
from lib.errors import ConfigError

RUN_STATE = "Run the runner"
RETRIED_ERRORS = ("ECS.AmazonECSException", "ECS.ServerException", "ECS.ThrottlingException")
START_ATTEMPTS = 3
RESTART_WAIT_SECONDS = 60
#: execution states in which the runner can no longer write its own end
ENDED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
ENDED_BADLY = ("FAILED", "TIMED_OUT", "ABORTED")


def worker_command(evolution_id_path: str = "$.evolution_id") -> str:
    """The container command as an intrinsic: python -m lib.evolution.worker <id>."""
    return f"States.Array('python', '-m', 'lib.evolution.worker', {evolution_id_path})"


def definition(executor: dict, state_table: str) -> dict:
    """The Amazon States Language document for the executor settings (`executor:` in settings.yaml)."""
    network = {"Subnets": list(executor["subnets"]), "AssignPublicIp": "DISABLED"}
    if executor["security_groups"]:
        network["SecurityGroups"] = list(executor["security_groups"])
    run = {
        "Type": "Task",
        "Comment": "one Fargate task runs the evolution's runner on a fresh clone at its base commit",
        "Resource": "arn:aws:states:::ecs:runTask.sync",
        "Parameters": {
            "LaunchType": "FARGATE",
            "Cluster": executor["cluster"],
            "TaskDefinition": executor["task_definition"],
            "NetworkConfiguration": {"AwsvpcConfiguration": network},
            "Overrides": {"ContainerOverrides": [{
                "Name": executor["container"],
                "Command.$": worker_command(),
                "Environment": [
                    {"Name": "TDEV_EVOLUTION_ID", "Value.$": "$.evolution_id"},
                    {"Name": "TDEV_STATE_BACKEND", "Value": "dynamodb"},
                    {"Name": "TDEV_STATE_TABLE", "Value": state_table},
                ],
            }]},
        },
        "ResultPath": "$.task",
        "Retry": [{"ErrorEquals": list(RETRIED_ERRORS), "IntervalSeconds": 10, "MaxAttempts": 6,
                   "BackoffRate": 2.0, "MaxDelaySeconds": 300, "JitterStrategy": "FULL"}],
        "Next": "Read the runner",
    }
    exit_code = "$.runner.container.ExitCode"
    return {
        "Comment": "T-Developer evolution runner (DESIGN §10); made by scripts/setup_executor.py",
        "StartAt": RUN_STATE,
        "States": {
            RUN_STATE: run,
            # the runner's container as a value of its own, so that the Choice reads a plain path
            "Read the runner": {
                "Type": "Pass", "Parameters": {"container.$": "States.ArrayGetItem($.task.Containers, 0)"},
                "ResultPath": "$.runner", "Next": "Runner ended",
            },
            "Runner ended": {
                "Type": "Choice",
                "Choices": [
                    {"And": [{"Variable": exit_code, "IsPresent": True},
                             {"Variable": exit_code, "NumericEquals": 0}], "Next": "Evolution ended"},
                    {"And": [{"Variable": "$.task.StopCode", "IsPresent": True},
                             {"Variable": "$.task.StopCode", "StringEquals": "TaskFailedToStart"},
                             {"Variable": "$.starts", "NumericLessThan": START_ATTEMPTS - 1}],
                     "Next": "Wait for capacity"},
                ],
                "Default": "Runner failed",
            },
            "Wait for capacity": {"Type": "Wait", "Seconds": RESTART_WAIT_SECONDS, "Next": "Count the start"},
            "Count the start": {
                "Type": "Pass",
                "Parameters": {"evolution_id.$": "$.evolution_id", "starts.$": "States.MathAdd($.starts, 1)"},
                "Next": RUN_STATE,
            },
            "Evolution ended": {"Type": "Succeed"},
            "Runner failed": {
                "Type": "Fail", "Error": "Evolution.RunnerFailed",
                "Cause": "the runner exited non-zero or its task never started; the evolution's record says why "
                         "(never retried: python scripts/analyze_failure.py --id <evolution id>)",
            },
        },
    }


def execution_input(evolution_id: str) -> str:
    return json.dumps({"evolution_id": evolution_id, "starts": 0})


def _client():
    return aws.client("stepfunctions")


def find_state_machine(name: str) -> dict | None:
    """{stateMachineArn, definition, roleArn} of the state machine called name, or None."""
    client = _client()
    with aws.aws_errors("list the Step Functions state machines"):
        for page in client.get_paginator("list_state_machines").paginate():
            for machine in page.get("stateMachines", []):
                if machine["name"] == name:
                    return client.describe_state_machine(stateMachineArn=machine["stateMachineArn"])
    return None


def state_machine_arn(name: str) -> str:
    """The ARN of the configured state machine; NotFound-style ConfigError naming setup_executor.py."""
    found = find_state_machine(name)
    if not found:
        raise ConfigError(f"Step Functions state machine {name!r} does not exist",
                          "create it: python scripts/setup_executor.py")
    return found["stateMachineArn"]


def create_state_machine(name: str, document: dict, role_arn: str) -> str:
    with aws.aws_errors(f"create the state machine {name}"):
        return _client().create_state_machine(name=name, definition=json.dumps(document), roleArn=role_arn,
                                              type="STANDARD")["stateMachineArn"]


def update_state_machine(arn: str, document: dict, role_arn: str) -> None:
    with aws.aws_errors(f"update the state machine {arn}"):
        _client().update_state_machine(stateMachineArn=arn, definition=json.dumps(document), roleArn=role_arn)


def start_execution(machine_arn: str, evolution_id: str) -> str:
    """Start the execution named by the evolution id; its ARN. A second start of one evolution (two schedulers,
    a retry after a lost answer) finds the execution that exists instead of starting another: Step Functions
    refuses a second execution of one name."""
    from botocore.exceptions import ClientError

    try:
        return _client().start_execution(stateMachineArn=machine_arn, name=evolution_id,
                                         input=execution_input(evolution_id))["executionArn"]
    except ClientError as error:
        if aws.is_error(error, "ExecutionAlreadyExists"):
            return execution_arn(machine_arn, evolution_id)
        raise aws.translate(error, f"start the execution {evolution_id}") from error


def execution_arn(machine_arn: str, name: str) -> str:
    """arn:aws:states:<region>:<account>:execution:<machine>:<name>, as Step Functions names it."""
    return machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def describe_execution(arn: str) -> dict:
    """{status, startDate, stopDate, error, cause} of an execution (AWSNotFound when there is none)."""
    with aws.aws_errors(f"describe the execution {arn}"):
        return _client().describe_execution(executionArn=arn)


def stop_execution(arn: str, cause: str) -> bool:
    """StopExecution; False when the execution had ended already (nothing to stop)."""
    if describe_execution(arn)["status"] in ENDED:
        return False
    with aws.aws_errors(f"stop the execution {arn}"):
        _client().stop_execution(executionArn=arn, error="Evolution.ForceStopped", cause=cause[:32000])
    return True


def task_arn(arn: str) -> str | None:
    """The ECS task the execution started most recently (from its TaskSubmitted events), if any yet."""
    with aws.aws_errors(f"read the history of {arn}"):
        events = _client().get_execution_history(executionArn=arn, reverseOrder=True, maxResults=100)["events"]
    for event in events:
        details = event.get("taskSubmittedEventDetails")
        if details and details.get("output"):
            try:
                tasks = json.loads(details["output"]).get("Tasks") or []
            except ValueError:
                continue
            if tasks and tasks[0].get("TaskArn"):
                return tasks[0]["TaskArn"]
    return None


def log_stream(task: str, executor: dict) -> tuple[str, str] | None:
    """(log group, stream) of the runner container of an ECS task under the awslogs driver, or None."""
    ecs = aws.client("ecs")
    with aws.aws_errors("describe the runner's task definition"):
        described = ecs.describe_task_definition(taskDefinition=executor["task_definition"])["taskDefinition"]
    for container in described.get("containerDefinitions", []):
        if container.get("name") != executor["container"]:
            continue
        options = (container.get("logConfiguration") or {}).get("options") or {}
        group = executor.get("log_group") or options.get("awslogs-group")
        prefix = options.get("awslogs-stream-prefix")
        if group and prefix:
            return group, f"{prefix}/{executor['container']}/{task.rsplit('/', 1)[-1]}"
    return None


def log_events(group: str, stream: str, token: str | None) -> tuple[list[str], str | None]:
    """New messages of a log stream since token, and the token to ask with next ([] while it does not exist)."""
    params = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
    if token:
        params["nextToken"] = token
    try:
        with aws.aws_errors(f"read the log stream {stream}"):
            answer = aws.client("logs").get_log_events(**params)
    except aws.AWSNotFound:
        return [], token
    return [event["message"] for event in answer.get("events", [])], answer.get("nextForwardToken") or token


def check_resources(executor: dict) -> list[str]:
    """One line per executor resource that is missing: the cluster, the task definition, each subnet and
    security group (and that there is at least one subnet: Fargate's awsvpc mode needs one)."""
    problems = []
    ecs, ec2 = aws.client("ecs"), aws.client("ec2")
    with aws.aws_errors(f"describe the ECS cluster {executor['cluster']}"):
        clusters = ecs.describe_clusters(clusters=[executor["cluster"]]).get("clusters", [])
    if not any(c.get("status") == "ACTIVE" for c in clusters):
        problems.append(f"ECS cluster {executor['cluster']!r} does not exist (settings executor.cluster)")
    try:
        with aws.aws_errors(f"describe the task definition {executor['task_definition']}"):
            task_definition = ecs.describe_task_definition(taskDefinition=executor["task_definition"])
        names = [c.get("name") for c in task_definition["taskDefinition"].get("containerDefinitions", [])]
        if executor["container"] not in names:
            problems.append(f"task definition {executor['task_definition']!r} has no container "
                            f"{executor['container']!r} (it has: {', '.join(map(str, names)) or 'none'})")
    except (aws.AWSError, aws.AWSNotFound):
        problems.append(f"task definition {executor['task_definition']!r} does not exist "
                        "(settings executor.task_definition; register it from deploy/Dockerfile's image)")
    if not executor["subnets"]:
        problems.append("settings executor.subnets is empty: a Fargate task needs at least one subnet")
    for kind, key, call, field in (("subnet", "subnets", "describe_subnets", "Subnets"),
                                   ("security group", "security_groups", "describe_security_groups", "SecurityGroups")):
        for ident in executor[key]:
            try:
                with aws.aws_errors(f"describe the {kind} {ident}"):
                    found = getattr(ec2, call)(**{("SubnetIds" if key == "subnets" else "GroupIds"): [ident]})[field]
            except (aws.AWSError, aws.AWSNotFound):
                found = []
            if not found:
                problems.append(f"{kind} {ident!r} does not exist (settings executor.{key})")
    return problems

