"""End to end: rotate_secrets.py against moto Secrets Manager (stages, Lambda rotation, external, failures)."""

from __future__ import annotations

import json

from aws_helpers import client, make_function

from lib.ops import secret_rotation


def stages(name: str) -> dict:
    return client("secretsmanager").describe_secret(SecretId=name)["VersionIdsToStages"]


def value(name: str, stage: str = "AWSCURRENT") -> str:
    return client("secretsmanager").get_secret_value(SecretId=name, VersionStage=stage)["SecretString"]


def test_rotate_all_moves_stages_and_never_prints_a_value(tdev, aws):
    sm = client("secretsmanager")
    first = sm.create_secret(Name="t-developer/api-key", SecretString="old-plain-value")["VersionId"]
    sm.create_secret(Name="t-developer/db", SecretString=json.dumps({"username": "tdev", "password": "old-pass"}))
    sm.create_secret(Name="t-developer/github-token", SecretString="ghp_external",
                     Tags=[{"Key": "tdev:rotation", "Value": "external"}])
    sm.create_secret(Name="other-team/secret", SecretString="untouched")

    result = tdev.run("rotate_secrets.py", "--all")
    assert result.returncode == 0, result.stderr
    for secret in ("old-plain-value", "old-pass", "ghp_external", value("t-developer/api-key")):
        assert secret not in result.stdout + result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert set(rows) == {"t-developer/api-key", "t-developer/db", "t-developer/github-token"}
    assert "generated" in rows["t-developer/api-key"] and "rotated" in rows["t-developer/api-key"]
    assert "external" in rows["t-developer/github-token"] and "not changed" in rows["t-developer/github-token"]

    api_stages = stages("t-developer/api-key")
    assert api_stages[first] == ["AWSPREVIOUS"]
    assert [v for v, s in api_stages.items() if "AWSCURRENT" in s] != [first]
    assert not any("AWSPENDING" in s for s in api_stages.values())
    assert value("t-developer/api-key") != "old-plain-value" and len(value("t-developer/api-key")) >= 32
    assert value("t-developer/api-key", "AWSPREVIOUS") == "old-plain-value"
    db = json.loads(value("t-developer/db"))
    assert db["username"] == "tdev" and db["password"] != "old-pass"
    assert value("t-developer/github-token") == "ghp_external" and value("other-team/secret") == "untouched"
    audit = json.loads((tdev.history / "audit.log").read_text().splitlines()[-1])
    assert audit["result"] == "rotated" and audit["secrets"]["not changed"] == ["t-developer/github-token"]


def test_rotation_lambda_is_used_and_a_failure_does_not_stop_the_rest(tdev, aws):
    sm = client("secretsmanager")
    arn = make_function("t-developer-rotator")
    sm.create_secret(Name="t-developer/a-rotated", SecretString="v1")
    sm.rotate_secret(SecretId="t-developer/a-rotated", RotationLambdaARN=arn, RotateImmediately=False)
    sm.create_secret(Name="t-developer/b-json", SecretString=json.dumps({"user": "x"}))  # nothing to rotate
    sm.create_secret(Name="t-developer/c-plain", SecretString="v1")
    result = tdev.run("rotate_secrets.py", "--all", "--json")
    assert result.returncode == 1
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["t-developer/a-rotated"]["method"] == "lambda"
    assert rows["t-developer/a-rotated"]["result"] == "rotated", rows["t-developer/a-rotated"]["detail"]
    assert rows["t-developer/b-json"]["result"] == "failed" and "no password" not in rows["t-developer/b-json"]
    assert "rotation Lambda" in rows["t-developer/b-json"]["detail"]
    assert rows["t-developer/c-plain"]["result"] == "rotated" and value("t-developer/c-plain") != "v1"
    assert rows["t-developer/c-plain"]["age_before"] == 0 and rows["t-developer/c-plain"]["age_after"] == 0
    assert "1 of 3 secrets failed: t-developer/b-json" in result.stderr


def test_dry_run_and_single_name(tdev, aws):
    client("secretsmanager").create_secret(Name="t-developer/one", SecretString="keep")
    result = tdev.run("rotate_secrets.py", "--name", "t-developer/one", "--dry-run")
    assert result.returncode == 0 and "would rotate" in result.stdout
    assert value("t-developer/one") == "keep"
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
