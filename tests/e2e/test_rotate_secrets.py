"""End to end: rotate_secrets.py against moto Secrets Manager, as DESIGN §8 says: a rotation Lambda
rotates, a secret tagged tdev:rotation=generated gets a new value through the stages and its agents
are restarted, every other secret is only reported (with a warning past rotation_days)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from aws_helpers import client, lambda_agent, make_function, registry

from lib.ops import secret_rotation

GENERATED = [{"Key": "tdev:rotation", "Value": "generated"}]


def stages(name: str) -> dict:
    return client("secretsmanager").describe_secret(SecretId=name)["VersionIdsToStages"]


def value(name: str, stage: str = "AWSCURRENT") -> str:
    return client("secretsmanager").get_secret_value(SecretId=name, VersionStage=stage)["SecretString"]


def restarted_at(function: str) -> str | None:
    variables = client("lambda").get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    return variables.get("TDEV_RESTARTED_AT")


def rows_of(result) -> dict:
    return {row["name"]: row for row in json.loads(result.stdout)}


def test_a_generated_secret_goes_through_the_stages_and_its_agents_restart(tdev, aws):
    sm = client("secretsmanager")
    first = sm.create_secret(Name="t-developer/agent-key", SecretString="old-plain-value", Tags=GENERATED)["VersionId"]
    sm.create_secret(Name="t-developer/signing", SecretString=json.dumps({"user": "tdev", "password": "old-pass"}),
                     Tags=GENERATED)
    sm.create_secret(Name="t-developer/db", SecretString=json.dumps({"username": "tdev", "password": "db-pass"}))
    sm.create_secret(Name="other-team/secret", SecretString="untouched", Tags=GENERATED)
    make_function("research-agent")
    make_function("planner-agent")
    registry(tdev, [lambda_agent(secrets=["t-developer/agent-key"]),
                    {**lambda_agent(), "name": "planner-agent", "phase": "plan", "function_name": "planner-agent"},
                    {"name": "evaluator-agent", "phase": "evaluate", "runtime": "local",
                     "secrets": ["t-developer/agent-key"]}])

    result = tdev.run("rotate_secrets.py", "--all", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    for secret in ("old-plain-value", "old-pass", "db-pass", value("t-developer/agent-key")):
        assert secret not in result.stdout + result.stderr
    rows = rows_of(result)
    assert set(rows) == {"t-developer/agent-key", "t-developer/signing", "t-developer/db"}
    key = rows["t-developer/agent-key"]
    assert (key["method"], key["result"], key["restarted"]) == ("generated", "rotated", ["research-agent"])
    assert key["detail"] == "verified; restarted research-agent"  # the local agent reads it at each call
    assert restarted_at("research-agent") and restarted_at("planner-agent") is None

    key_stages = stages("t-developer/agent-key")
    assert key_stages[first] == ["AWSPREVIOUS"] and not any("AWSPENDING" in s for s in key_stages.values())
    assert value("t-developer/agent-key") != "old-plain-value" and len(value("t-developer/agent-key")) >= 32
    assert value("t-developer/agent-key", "AWSPREVIOUS") == "old-plain-value"
    signing = json.loads(value("t-developer/signing"))
    assert signing["user"] == "tdev" and signing["password"] != "old-pass"

    db = rows["t-developer/db"]  # issued elsewhere: its consumer would never learn a value of ours
    assert (db["method"], db["result"], db["age_before"], db["age_after"]) == ("issued elsewhere", "not changed", 0, 0)
    assert json.loads(value("t-developer/db"))["password"] == "db-pass" and value("other-team/secret") == "untouched"
    audit = json.loads((tdev.history / "audit.log").read_text().splitlines()[-1])
    assert audit["result"] == "rotated" and audit["secrets"]["not changed"] == ["t-developer/db"]
    assert audit["restarted"] == ["research-agent"] and audit["overdue"] == []


def test_a_secret_issued_elsewhere_is_never_given_a_value_and_warns_past_rotation_days(tdev, aws):
    sm = client("secretsmanager")
    sm.create_secret(Name="t-developer/github-token", SecretString="ghp_issued_by_github")
    sm.create_secret(Name="t-developer/db-password", SecretString="issued-by-the-dba",
                     Tags=[{"Key": "tdev:rotation", "Value": "external"}])
    tdev.pin_clock(datetime.now(UTC) + timedelta(days=120, hours=1))

    result = tdev.run("rotate_secrets.py", "--all", "--json")
    assert result.returncode == 1, result.stderr
    rows = rows_of(result)
    for name in ("t-developer/github-token", "t-developer/db-password"):
        row = rows[name]
        assert (row["result"], row["age_before"], row["warning"]) == ("not changed", 120, True)
        assert row["detail"].startswith("WARNING: 120 days old, past rotation_days 90: issue a new value where")
        assert f"aws secretsmanager put-secret-value --secret-id {name}" in row["detail"]
        assert len(stages(name)) == 1
    assert value("t-developer/github-token") == "ghp_issued_by_github"
    assert value("t-developer/db-password") == "issued-by-the-dba"
    assert result.stderr.startswith("warning: 2 secret(s) issued elsewhere are past rotation_days")
    assert "ghp_issued_by_github" not in result.stdout + result.stderr
    audit = json.loads((tdev.history / "audit.log").read_text().splitlines()[-1])
    assert audit["result"] == "warning" and audit["overdue"] == ["t-developer/db-password", "t-developer/github-token"]

    tdev.write_config("settings", "retention:\n  rotation_days: 365\n")
    assert tdev.run("rotate_secrets.py", "--all").returncode == 0


def test_rotation_lambda_is_used_and_a_failure_does_not_stop_the_rest(tdev, aws):
    sm = client("secretsmanager")
    arn = make_function("t-developer-rotator")
    sm.create_secret(Name="t-developer/a-rotated", SecretString="v1")
    sm.rotate_secret(SecretId="t-developer/a-rotated", RotationLambdaARN=arn, RotateImmediately=False)
    sm.create_secret(Name="t-developer/b-json", SecretString=json.dumps({"user": "x"}), Tags=GENERATED)
    sm.create_secret(Name="t-developer/c-plain", SecretString="v1", Tags=GENERATED)
    result = tdev.run("rotate_secrets.py", "--all", "--json")
    assert result.returncode == 1
    rows = rows_of(result)
    assert rows["t-developer/a-rotated"]["method"] == "lambda"
    assert rows["t-developer/a-rotated"]["result"] == "rotated", rows["t-developer/a-rotated"]["detail"]
    failed = rows["t-developer/b-json"]
    assert failed["result"] == "failed" and "add such a field, or give the secret a rotation Lambda" in failed["detail"]
    assert rows["t-developer/c-plain"]["result"] == "rotated" and value("t-developer/c-plain") != "v1"
    assert rows["t-developer/c-plain"]["age_before"] == 0 and rows["t-developer/c-plain"]["age_after"] == 0
    assert "1 of 3 secrets failed: t-developer/b-json" in result.stderr


def test_a_failed_restart_fails_the_row_but_keeps_the_new_value(tdev, aws):
    client("secretsmanager").create_secret(Name="t-developer/agent-key", SecretString="v1", Tags=GENERATED)
    registry(tdev, [lambda_agent(secrets=["t-developer/agent-key"])])  # its function does not exist
    result = tdev.run("rotate_secrets.py", "--all", "--json")
    assert result.returncode == 1
    row = rows_of(result)["t-developer/agent-key"]
    assert row["result"] == "rotated, restart failed" and "restart of research-agent failed" in row["detail"]
    assert "python scripts/restart_agent.py --name <agent>" in row["detail"] and value("t-developer/agent-key") != "v1"


def test_dry_run_and_single_name(tdev, aws):
    sm = client("secretsmanager")
    sm.create_secret(Name="t-developer/one", SecretString="keep", Tags=GENERATED)
    registry(tdev, [lambda_agent(secrets=["t-developer/one"])])
    result = tdev.run("rotate_secrets.py", "--name", "t-developer/one", "--dry-run")
    assert result.returncode == 0 and "would rotate" in result.stdout
    assert "would restart research-agent" in result.stdout
    assert value("t-developer/one") == "keep"
    sm.create_secret(Name="t-developer/theirs", SecretString="keep")
    theirs = tdev.run("rotate_secrets.py", "--name", "t-developer/theirs", "--dry-run")
    assert theirs.returncode == 0 and "not changed" in theirs.stdout and value("t-developer/theirs") == "keep"
    missing = tdev.run("rotate_secrets.py", "--name", "t-developer/none")
    assert missing.returncode == 1 and "failed" in missing.stdout
    assert tdev.run("rotate_secrets.py").returncode == 2


def test_no_credentials_is_one_line(tdev):
    result = tdev.run("rotate_secrets.py", "--all")
    assert result.returncode == 1 and result.stderr.startswith("error: rotate secrets: no AWS credentials")


def test_new_value_keeps_the_json_shape():
    rotated = json.loads(secret_rotation.new_value(json.dumps({"host": "db", "api_key": "k", "Password": "p"})))
    assert rotated["host"] == "db" and rotated["api_key"] != "k" and rotated["Password"] != "p"
    assert len(secret_rotation.new_value("plain")) >= 32
