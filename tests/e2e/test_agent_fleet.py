"""End to end: the agent scripts against moto (Lambda, ECS, AgentCore control), as subprocesses."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aws_helpers import client, lambda_role, make_function, make_service, put_metrics, registry

TAG = "tdev:pre-stop-capacity"


@pytest.fixture
def fleet(tdev, aws, monkeypatch):
    """A registry with a Lambda agent, an ECS agent (2 running) and a local agent."""
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "2")  # the moto server runs in this process
    make_function("research-agent")
    make_service("planner-agent", desired=2)
    registry(tdev, [
        {"name": "research-agent", "phase": "research", "runtime": "lambda", "function_name": "research-agent"},
        {"name": "planner-agent", "phase": "plan", "runtime": "ecs", "cluster": "t-developer",
         "service": "planner-agent"},
        {"name": "evaluator-agent", "phase": "evaluate", "runtime": "local"},
    ])
    return tdev


def reserved(function: str):
    return client("lambda").get_function_concurrency(FunctionName=function).get("ReservedConcurrentExecutions")


def service(name: str = "planner-agent") -> dict:
    return client("ecs").describe_services(cluster="t-developer", services=[name], include=["TAGS"])["services"][0]


def lambda_tags(function: str = "research-agent") -> dict:
    arn = client("lambda").get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    return client("lambda").list_tags(Resource=arn)["Tags"]


def service_tags() -> dict:
    arn = service()["serviceArn"]
    return {t["key"]: t["value"] for t in client("ecs").list_tags_for_resource(resourceArn=arn)["tags"]}


# ---- agent_status.py ----------------------------------------------------------------------------

def test_agent_status_all_shows_every_runtime(fleet):
    put_metrics("AWS/Lambda", [
        {"MetricName": "Errors", "Dimensions": [{"Name": "FunctionName", "Value": "research-agent"}], "Value": 3}])
    result = fleet.run("agent_status.py", "--all")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["AGENT", "RUNTIME", "STATE"]
    assert any(line.startswith("research-agent") and "lambda" in line and "active" in line for line in lines)
    assert any(line.startswith("planner-agent") and "2/2 running" in line for line in lines)
    document = json.loads(fleet.run("agent_status.py", "--all", "--json").stdout)
    by_name = {row["name"]: row for row in document}
    assert by_name["research-agent"]["errors_last_hour"] == 3
    assert by_name["research-agent"]["capacity"] == "unreserved"
    assert by_name["planner-agent"]["state"] == "running"
    assert by_name["planner-agent"]["version"].startswith("planner-agent:1")
    assert by_name["evaluator-agent"]["runtime"] == "local"
    assert set(by_name["research-agent"]) == {"name", "runtime", "state", "version", "capacity",
                                              "errors_last_hour", "health", "detail"}


def test_agent_status_health_url_and_missing_function(tdev, aws):
    class Health(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        registry(tdev, [
            {"name": "research-agent", "phase": "research", "runtime": "lambda", "function_name": "gone",
             "health_url": f"http://127.0.0.1:{server.server_address[1]}/health"},
        ])
        result = tdev.run("agent_status.py", "--name", "research-agent", "--json")
    finally:
        server.shutdown()
    assert result.returncode == 1  # the function does not exist: the status could not be read
    row = json.loads(result.stdout)[0]
    assert row["state"] == "error" and "not found" in row["detail"]
    assert row["health"].startswith("200 ok")


def test_agent_status_unknown_name_lists_known_agents(fleet):
    result = fleet.run("agent_status.py", "--name", "nope")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: unknown agent 'nope'; known agents: research-agent, planner-agent, evaluator-agent "
        "(config/agents.yaml)"]


def test_agent_status_needs_all_or_name(fleet):
    assert fleet.run("agent_status.py").returncode == 2


def test_agent_status_without_credentials_is_one_line(fleet):
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    result = fleet.run("agent_status.py", "--all", env=env)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "no AWS credentials" in result.stderr
    assert "Traceback" not in result.stderr


# ---- restart_agent.py ------------------------------------------------------------------------------

def test_restart_lambda_keeps_variables_and_audits(fleet):
    result = fleet.run("restart_agent.py", "--name", "research-agent")
    assert result.returncode == 0, result.stderr
    assert "restarted fresh execution environments" in result.stdout
    variables = client("lambda").get_function_configuration(FunctionName="research-agent")["Environment"]["Variables"]
    assert variables["MODE"] == "test" and variables["TDEV_RESTARTED_AT"].endswith("+00:00")
    audit = [json.loads(line) for line in (fleet.history / "audit.log").read_text().splitlines()]
    assert audit[-1]["result"] == "restarted" and audit[-1]["agent"] == "research-agent"


def test_restart_ecs_forces_a_deployment_and_waits(fleet):
    before = service()["deployments"][0]["id"]
    result = fleet.run("restart_agent.py", "--name", "planner-agent")
    assert result.returncode == 0, result.stderr
    assert "steady state reached" in result.stdout
    assert service()["deployments"][0]["id"] != before


def test_restart_ecs_times_out_when_never_steady(tdev, aws, monkeypatch):
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "0")
    make_service("planner-agent", desired=2)
    registry(tdev, [{"name": "planner-agent", "phase": "plan", "runtime": "ecs", "service": "planner-agent",
                     "restart_timeout_seconds": 1}])
    result = tdev.run("restart_agent.py", "--name", "planner-agent")
    assert result.returncode == 1
    assert "steady state: not done after 1s" in result.stderr


def test_restart_local_agent_is_refused(fleet):
    result = fleet.run("restart_agent.py", "--name", "evaluator-agent")
    assert result.returncode == 1 and "cannot restart a local agent" in result.stderr


def test_restart_dry_run_changes_nothing(fleet):
    result = fleet.run("restart_agent.py", "--name", "research-agent", "--dry-run")
    assert result.returncode == 0 and "would restart" in result.stdout
    variables = client("lambda").get_function_configuration(FunctionName="research-agent")["Environment"]["Variables"]
    assert "TDEV_RESTARTED_AT" not in variables


# ---- scale_agent.py ------------------------------------------------------------------------------

def test_scale_lambda_and_ecs_show_old_and_new(fleet):
    result = fleet.run("scale_agent.py", "--name", "research-agent", "--instances", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "research-agent: reserved concurrency unset -> 3 (scaled)"
    assert reserved("research-agent") == 3
    result = fleet.run("scale_agent.py", "--name", "research-agent", "--instances", "5", "--json")
    assert json.loads(result.stdout)["old"] == 3 and reserved("research-agent") == 5
    result = fleet.run("scale_agent.py", "--name", "planner-agent", "--instances", "4")
    assert result.stdout.strip() == "planner-agent: desired count 2 -> 4 (scaled)"
    assert service()["desiredCount"] == 4


def test_scale_refuses_bad_values(fleet):
    assert fleet.run("scale_agent.py", "--name", "research-agent", "--instances", "-1").returncode == 2
    result = fleet.run("scale_agent.py", "--name", "research-agent", "--instances", "2", "--provisioned")
    assert result.returncode == 2 and "set qualifier" in result.stderr
    result = fleet.run("scale_agent.py", "--name", "planner-agent", "--instances", "2", "--provisioned")
    assert result.returncode == 2 and "Lambda agents only" in result.stderr
    assert fleet.run("scale_agent.py", "--name", "ghost", "--instances", "2").returncode == 1


def test_scale_dry_run(fleet):
    result = fleet.run("scale_agent.py", "--name", "planner-agent", "--instances", "9", "--dry-run")
    assert result.returncode == 0 and "would scale" in result.stdout
    assert service()["desiredCount"] == 2


# ---- stop_all_agents.py / start_all_agents.py ---------------------------------------------------------

def test_stop_then_start_restores_exact_capacity_across_a_store_restore(fleet):
    client("lambda").put_function_concurrency(FunctionName="research-agent", ReservedConcurrentExecutions=7)
    result = fleet.run("stop_all_agents.py")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert "stopped" in rows["research-agent"] and "nothing to stop" in rows["evaluator-agent"]
    assert reserved("research-agent") == 0 and service()["desiredCount"] == 0
    assert lambda_tags()[TAG] == "reserved=7" and service_tags()[TAG] == "desired=2"

    from lib.store import open_store

    store = open_store()
    assert store.get_meta("agent-capacity:research-agent")["capacity"] == {"reserved": 7}
    assert store.get_meta("agent-capacity:planner-agent")["capacity"] == {"desired": 2}
    store.close()

    again = json.loads(fleet.run("stop_all_agents.py", "--json").stdout)
    assert {r["name"]: r["result"] for r in again}["research-agent"] == "already stopped"
    assert lambda_tags()[TAG] == "reserved=7"  # the second stop did not record zero

    (fleet.history / "state.db").unlink()  # the runbook restores the store between stop and start
    result = fleet.run("start_all_agents.py")
    assert result.returncode == 0, result.stderr
    assert reserved("research-agent") == 7 and service()["desiredCount"] == 2
    assert TAG not in lambda_tags() and TAG not in service_tags()

    twice = json.loads(fleet.run("start_all_agents.py", "--json").stdout)
    assert {r["name"]: r["result"] for r in twice} == {
        "research-agent": "not stopped", "planner-agent": "not stopped", "evaluator-agent": "nothing to start"}
    assert reserved("research-agent") == 7 and service()["desiredCount"] == 2
    results = [json.loads(line)["result"] for line in (fleet.history / "audit.log").read_text().splitlines()]
    assert results == ["stopped", "stopped", "started", "started"]


def test_unreserved_function_goes_back_to_unreserved(fleet):
    assert fleet.run("stop_all_agents.py", "--name", "research-agent").returncode == 0
    assert reserved("research-agent") == 0 and lambda_tags()[TAG] == "reserved=none"
    assert fleet.run("start_all_agents.py", "--name", "research-agent").returncode == 0
    assert reserved("research-agent") is None


def test_stop_dry_run_changes_nothing(fleet):
    result = fleet.run("stop_all_agents.py", "--dry-run")
    assert result.returncode == 0 and "would stop" in result.stdout
    assert reserved("research-agent") is None and service()["desiredCount"] == 2
    assert TAG not in lambda_tags()
    assert not (fleet.history / "audit.log").exists()


def test_stop_reports_a_failure_and_goes_on(fleet):
    registry(fleet, [
        {"name": "research-agent", "phase": "research", "runtime": "lambda", "function_name": "missing"},
        {"name": "planner-agent", "phase": "plan", "runtime": "ecs", "service": "planner-agent"},
    ])
    result = fleet.run("stop_all_agents.py", "--json")
    assert result.returncode == 1
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["research-agent"]["result"] == "failed" and "not found" in rows["research-agent"]["detail"]
    assert rows["planner-agent"]["result"] == "stopped" and service()["desiredCount"] == 0


# ---- check_resource_usage.py ------------------------------------------------------------------------

def test_resource_usage_lambda_warns_near_the_timeout(fleet):
    dims = [{"Name": "FunctionName", "Value": "research-agent"}]
    put_metrics("AWS/Lambda", [
        {"MetricName": "Invocations", "Dimensions": dims, "Value": 100},
        {"MetricName": "Errors", "Dimensions": dims, "Value": 2},
        {"MetricName": "Throttles", "Dimensions": dims, "Value": 0},
        {"MetricName": "Duration", "Dimensions": dims, "Value": 29000, "Unit": "Milliseconds"},
        {"MetricName": "ConcurrentExecutions", "Dimensions": dims, "Value": 4},
    ])
    result = fleet.run("check_resource_usage.py", "--agent", "research-agent", "--json")
    assert result.returncode == 0, result.stderr
    figures = {row["figure"]: row for row in json.loads(result.stdout)["figures"]}
    assert figures["invocations"]["value"] == 100 and figures["errors"]["status"] == "ok"
    assert figures["duration max"]["value"] == 29000 and figures["duration max"]["limit"] == 30000
    assert figures["duration max"]["status"] == "warning"
    assert figures["concurrency max"]["value"] == 4 and figures["concurrency max"]["status"] == "ok"
    table = fleet.run("check_resource_usage.py", "--agent", "research-agent")
    assert "duration max" in table.stdout and "warning: research-agent: duration max near the limit" in table.stderr


def test_resource_usage_ecs_cpu_memory_and_running(fleet):
    dims = [{"Name": "ClusterName", "Value": "t-developer"}, {"Name": "ServiceName", "Value": "planner-agent"}]
    put_metrics("AWS/ECS", [
        {"MetricName": "CPUUtilization", "Dimensions": dims, "Value": 91.0},
        {"MetricName": "MemoryUtilization", "Dimensions": dims, "Value": 40.0},
    ])
    result = fleet.run("check_resource_usage.py", "--agent", "planner-agent", "--json")
    figures = {row["figure"]: row for row in json.loads(result.stdout)["figures"]}
    assert figures["cpu max"]["status"] == "warning" and figures["memory max"]["status"] == "ok"
    assert figures["running tasks"]["value"] == 2 and figures["running tasks"]["limit"] == 2


def test_resource_usage_local_agent_has_no_figures(fleet):
    result = fleet.run("check_resource_usage.py", "--agent", "evaluator-agent")
    assert result.returncode == 0 and "runs on this machine" in result.stderr


def test_stop_and_start_with_the_dynamodb_store(fleet):
    env = {"TDEV_STATE_BACKEND": "dynamodb", "TDEV_STATE_TABLE": "tdev-team"}
    empty = fleet.run("show_active_evolutions.py", env=env)
    assert empty.returncode == 0 and empty.stderr.count("no evolution history yet in DynamoDB table tdev-team") == 1
    assert fleet.run("stop_all_agents.py", env=env).returncode == 0
    item = client("dynamodb").get_item(TableName="tdev-team", Key={"pk": {"S": "meta#agent-capacity:planner-agent"}})
    assert json.loads(item["Item"]["value"]["S"])["capacity"] == {"desired": 2}
    assert fleet.run("start_all_agents.py", env=env).returncode == 0
    assert service()["desiredCount"] == 2
    assert "Item" not in client("dynamodb").get_item(TableName="tdev-team",
                                                     Key={"pk": {"S": "meta#agent-capacity:planner-agent"}})


# ---- AgentCore ----------------------------------------------------------------------------------

def make_agentcore_runtime() -> str:
    return client("bedrock-agentcore-control").create_agent_runtime(
        agentRuntimeName="research_agent", roleArn=lambda_role(),
        agentRuntimeArtifact={"containerConfiguration": {"containerUri": "1.dkr.ecr.us-east-1.amazonaws.com/a:1"}},
        networkConfiguration={"networkMode": "PUBLIC"}, environmentVariables={"MODE": "prod"})["agentRuntimeId"]


def test_agentcore_status_and_restart_update_on_moto(tdev, aws):
    runtime_id = make_agentcore_runtime()
    registry(tdev, [{"name": "research-agent", "phase": "research", "runtime": "agentcore",
                     "agent_runtime_id": runtime_id, "restart_timeout_seconds": 1}])
    result = tdev.run("agent_status.py", "--name", "research-agent", "--json")
    row = json.loads(result.stdout)[0]
    assert result.returncode == 0 and row["state"] in ("creating", "ready") and row["version"].startswith("v1")
    restart = tdev.run("restart_agent.py", "--name", "research-agent")
    updated = client("bedrock-agentcore-control").get_agent_runtime(agentRuntimeId=runtime_id)
    assert updated["agentRuntimeVersion"] == "2"
    assert updated["environmentVariables"]["MODE"] == "prod" and "TDEV_RESTARTED_AT" in updated["environmentVariables"]
    assert restart.returncode == 1 and "not done after 1s" in restart.stderr  # moto never leaves UPDATING
    stop = json.loads(tdev.run("stop_all_agents.py", "--json").stdout)
    assert stop[0]["result"] == "nothing to stop"
