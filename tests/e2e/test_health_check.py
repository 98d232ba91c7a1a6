"""health_check.py end to end: the local checks, the AWS checks against moto (and without credentials),
and the full group with MCP servers, the GitHub stand-in and the last security audit."""

from __future__ import annotations

import json

from aws_helpers import lambda_agent, make_function, registry
from mcp_servers.helpers import end_all, leftovers, script_server, time_server, write_config

from lib.store import open_store


def test_health_check_reports_the_local_checks(tdev):
    open_store(create=True).close()
    result = tdev.run("health_check.py", "--json")
    document = json.loads(result.stdout)
    local_checks = {c["name"]: c["status"] for c in document["checks"] if c["area"] == "local"}
    assert local_checks == {"config": "ok", "store": "ok", "disk": "ok", "stuck_evolutions": "ok",
                            "stale_locks": "ok"}, document


def test_health_check_script_runs_the_aws_checks(tdev, aws):
    make_function("research-agent")
    registry(tdev, [{"name": "research-agent", "phase": "research", "runtime": "lambda"}])
    result = tdev.run("health_check.py", "--full", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["aws_credentials"]["status"] == "ok" and checks["aws_credentials"]["area"] == "aws"
    assert checks["aws_agents"]["status"] == "ok"
    assert checks["cloudwatch_alarms"]["status"] == "ok"
    assert checks["aws_budget"]["status"] == "warning"


def test_health_check_without_credentials_for_aws_agents(tdev):
    registry(tdev, [{"name": "research-agent", "phase": "research", "runtime": "lambda"}])
    result = tdev.run("health_check.py", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["aws_credentials"]["status"] == "unknown"
    assert "no AWS credentials" in checks["aws_credentials"]["summary"]
    assert result.returncode == 3  # a dependency that could not be asked: UNKNOWN


def test_check_command_without_credentials_exits_unknown(tdev):
    registry(tdev, [lambda_agent()])
    result = tdev.run("health_check.py")
    assert result.returncode == 3, result.stdout


def test_health_check_full_runs_the_mcp_github_and_security_checks(tdev, github):
    write_config(tdev.mcp_config, {"time": time_server(), "exits": script_server("exits_at_once")})
    try:
        result = tdev.run("health_check.py", "--full", "--json")
    finally:
        left = leftovers(tdev.mcp_log_dir)
        end_all(left)
    assert not left
    checks = {item["name"]: item for item in json.loads(result.stdout)["checks"]}
    assert checks["mcp_servers"]["status"] == "critical"
    assert checks["mcp_servers"]["area"] == "mcp"
    assert "1/2 servers answered (time " in checks["mcp_servers"]["summary"]
    assert "exits: server exited with code 3" in checks["mcp_servers"]["summary"]
    assert checks["github_api"]["status"] == "ok" and "acme/widgets reachable" in checks["github_api"]["summary"]
    assert checks["security_audit"]["status"] == "warning"
    assert result.returncode == 2
