"""lib/quality/security_rules.py: each rule with a case that finds and one that passes (moto for AWS, the
GitHub stand-in for branch protection)."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import boto3
import pytest
from audit_helpers import GITHUB_TOKEN_VALUE, secure_backup_bucket, write_mcp

from lib import config
from lib.quality import security_rules as security_audit

AWS_KEY_VALUE = "AKIA" + "ABCDEFGHIJ234567"
PASSWORD_VALUE = "hunter2-but-longer"


def findings(rule_name: str) -> list[security_audit.Finding]:
    config.settings.cache_clear()
    return next(rule for rule in security_audit.RULES if rule.name == rule_name).func()


# ---- permissions ------------------------------------------------------------------------------

def test_permissions_finds(home):
    os.chmod(home.history, 0o777)
    os.chmod(home.config_dir / "settings.yaml", 0o664)
    write_mcp(home, {"a": {"command": "x"}}, mode=0o644)
    found = {(f.where, f.severity) for f in findings("permissions")}
    assert found == {(str(home.history), "critical"), (str(home.config_dir / "settings.yaml"), "warning"),
                     (str(home.mcp_config), "warning")}
    fix = next(f.fix for f in findings("permissions") if f.where == str(home.history))
    assert fix == f"chmod 700 {home.history}"


def test_permissions_pass(home):
    write_mcp(home, {"a": {"command": "x"}})
    assert findings("permissions") == []


# ---- plaintext secrets ------------------------------------------------------------------------

def test_plaintext_secrets_finds_and_masks(home):
    (home.base / ".env").write_text(f"GITHUB_TOKEN={GITHUB_TOKEN_VALUE}\nexport DB_PASSWORD={PASSWORD_VALUE}\n")
    (home.config_dir / "settings.yaml").write_text(f"# leaked: aws_access_key_id = {AWS_KEY_VALUE}\n")
    write_mcp(home, {"gh": {"type": "http", "url": "https://example.test/mcp",
                            "headers": {"Authorization": "Bearer literal-token-value-123"}},
                     "git": {"command": "x", "env": {"GITHUB_TOKEN": GITHUB_TOKEN_VALUE}}})
    found = findings("plaintext-secrets")
    where = sorted(f.where for f in found)
    token_line = home.mcp_config.read_text().splitlines().index(f'        "GITHUB_TOKEN": "{GITHUB_TOKEN_VALUE}"') + 1
    assert where == sorted([f"{home.base / '.env'}:1", f"{home.base / '.env'}:2",
                            f"{home.config_dir / 'settings.yaml'}:1", f"{home.mcp_config}:{token_line}",
                            f"{home.mcp_config}: mcpServers.gh.headers.Authorization"])
    assert all(f.severity == "critical" for f in found)
    text = json.dumps([vars(f) for f in found], ensure_ascii=False)
    for secret in (GITHUB_TOKEN_VALUE, AWS_KEY_VALUE, PASSWORD_VALUE, "literal-token-value-123"):
        assert secret not in text
    assert "GitHub token ghp_… (40 chars)" in text


def test_plaintext_secrets_pass(home):
    (home.base / ".env").write_text("GITHUB_TOKEN=${GH_TOKEN}\nDB_PASSWORD=\nAPI_KEY=<fill me>\n")
    write_mcp(home, {"gh": {"type": "http", "url": "https://example.test/mcp",
                            "headers": {"Authorization": "Bearer ${GITHUB_TOKEN}"}}})
    assert findings("plaintext-secrets") == []  # the shipped config (secret_prefix, *_age_days) is no secret


# ---- MCP servers that would import the shim ----------------------------------------------------

def test_mcp_shim_shadowing_finds(home):
    write_mcp(home, {"git": {"command": "python3", "args": ["-m", "mcp_server_git"]},
                     "time": {"command": "/usr/bin/python3.11", "args": ["-m", "mcp_server_time"],
                              "cwd": str(home.base)}})
    found = {f.where.rsplit(".", 1)[-1]: f.severity for f in findings("mcp-shim-shadowing")}
    assert found == {"git": "warning", "time": "critical"}


def test_mcp_shim_shadowing_pass(home):
    write_mcp(home, {"git": {"command": "python3", "args": ["-m", "mcp_server_git"], "cwd": "${HOME}"},
                     "fs": {"command": "npx", "args": ["-y", "pkg"]}})
    assert findings("mcp-shim-shadowing") == []


# ---- AWS (--full) -----------------------------------------------------------------------------

def test_backup_bucket_finds(home, aws):
    boto3.client("s3").create_bucket(Bucket="t-developer-backups")
    details = sorted(f.detail for f in findings("backup-bucket"))
    assert details == ["no default encryption", "public access not blocked: no public access block",
                       "versioning never enabled: a deleted or overwritten backup cannot be recovered"]


def test_backup_bucket_missing_is_a_warning(home, aws):
    [finding] = findings("backup-bucket")
    assert (finding.severity, finding.detail) == ("warning", "the backup bucket does not exist")


def test_backup_bucket_pass(home, aws):
    secure_backup_bucket()
    assert findings("backup-bucket") == []


@pytest.fixture
def a_day_later(monkeypatch):
    """The rules' clock a day ahead: what was made a moment ago is a day old, whatever the store's timestamp
    precision (moto's may round a creation time up past the moment it is judged at)."""
    later = security_audit.utcnow() + timedelta(days=1)
    monkeypatch.setattr(security_audit, "utcnow", lambda: later)


@pytest.mark.usefixtures("a_day_later")
def test_secret_rotation_finds_old_secrets(home, aws):
    home.write_config("settings", "retention:\n  secret_max_age_days: 0\n")
    client = boto3.client("secretsmanager")
    client.create_secret(Name="t-developer/db", SecretString="x")
    client.create_secret(Name="t-developer/github", SecretString="y", Tags=[{"Key": "tdev:rotation",
                                                                             "Value": "external"}])
    client.create_secret(Name="someone-else/db", SecretString="z")
    found = {f.where: f.fix for f in findings("secret-rotation")}
    assert set(found) == {"secret t-developer/db", "secret t-developer/github"}
    assert found["secret t-developer/db"] == "python scripts/rotate_secrets.py --all"
    assert "tdev:rotation=external" in found["secret t-developer/github"]


def test_secret_rotation_pass(home, aws):
    boto3.client("secretsmanager").create_secret(Name="t-developer/db", SecretString="x")
    assert findings("secret-rotation") == []


@pytest.mark.usefixtures("a_day_later")
def test_iam_access_keys_finds_old_keys(home, aws):
    home.write_config("settings", "retention:\n  access_key_max_age_days: 0\n")
    iam = boto3.client("iam")
    iam.create_user(UserName="deployer")
    key = iam.create_access_key(UserName="deployer")["AccessKey"]
    [finding] = findings("iam-access-keys")
    assert finding.where == f"IAM user deployer key …{key['AccessKeyId'][-4:]}"
    assert key["AccessKeyId"] not in json.dumps(vars(finding))


def test_iam_access_keys_pass(home, aws):
    iam = boto3.client("iam")
    iam.create_user(UserName="deployer")
    iam.create_access_key(UserName="deployer")
    assert findings("iam-access-keys") == []


def test_log_retention_finds(home, aws):
    home.write_config("agents", "agents:\n  - {name: research-agent, phase: research, runtime: lambda, "
                                "function_name: research-agent}\n")
    logs = boto3.client("logs")
    for name in ("/aws/lambda/research-agent", "/t-developer/app", "/aws/lambda/unrelated"):
        logs.create_log_group(logGroupName=name)
    found = sorted(f.where for f in findings("log-retention"))
    assert found == ["log group /aws/lambda/research-agent", "log group /t-developer/app"]


def test_log_retention_pass(home, aws):
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName="/t-developer/app")
    logs.put_retention_policy(logGroupName="/t-developer/app", retentionInDays=30)
    assert findings("log-retention") == []


# ---- GitHub (--full) ---------------------------------------------------------------------------

def test_branch_protection_finds(home, github):
    [finding] = findings("branch-protection")
    assert finding.severity == "critical" and finding.where == "github acme/widgets branch main"
    github.protection["main"] = {"required_status_checks": {"contexts": ["ci"]}}
    [finding] = findings("branch-protection")
    assert finding.severity == "warning" and "without required reviews" in finding.detail


def test_branch_protection_pass(home, github):
    github.protection["main"] = {"required_status_checks": {"contexts": ["ci"]},
                                 "required_pull_request_reviews": {"required_approving_review_count": 1}}
    assert findings("branch-protection") == []


def test_branch_protection_skipped_without_github(home):
    with pytest.raises(security_audit.Skipped):
        findings("branch-protection")
