"""security_audit.py end to end: critical findings, the full run (moto for AWS, the GitHub stand-in for
branch protection), warnings and unknowns, and the cron lock."""

from __future__ import annotations

import json
import os

from audit_helpers import GITHUB_TOKEN_VALUE, secure_backup_bucket, write_mcp

from lib.store.sqlite import SQLiteStore


def test_script_critical_findings_exit_2_and_feed_the_metric(home):
    (home.base / ".env").write_text(f"GITHUB_TOKEN={GITHUB_TOKEN_VALUE}\n")
    os.chmod(home.base / ".env", 0o600)
    result = home.run("security_audit.py")
    assert result.returncode == 2, result.stderr
    assert result.stdout.startswith("SECURITY CRITICAL: plaintext-secrets (1 finding(s), 3 rule(s) run) | "
                                     "'critical'=1;;0 'warning'=0;0 'unchecked'=0;0")
    assert "plaintext-secrets" in result.stdout and GITHUB_TOKEN_VALUE not in result.stdout + result.stderr
    store = SQLiteStore.open(path=home.history / "state.db")
    assert store.get_meta("security-findings") == 1
    assert store.get_meta("security-audit")["critical"] == 1


def test_script_full_all_clear(home, aws, github):
    secure_backup_bucket()
    github.protection["main"] = {"required_status_checks": {"contexts": ["ci"]},
                                 "required_pull_request_reviews": {"required_approving_review_count": 1}}
    write_mcp(home, {"git": {"command": "python3", "args": ["-m", "mcp_server_git"], "cwd": "${HOME}"}})
    result = home.run("security_audit.py", "--full", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert (document["status"], document["findings"], document["errors"]) == ("ok", [], [])
    assert len(document["rules"]) == 8
    assert SQLiteStore.open(path=home.history / "state.db").get_meta("security-findings") == 0


def test_script_full_warnings_and_unknown(home):
    os.chmod(home.config_dir / "gates.yaml", 0o660)
    result = home.run("security_audit.py", "--full")  # no AWS credentials, no GitHub
    assert result.returncode == 3, result.stdout + result.stderr
    assert "could not check backup-bucket" in result.stderr and "no AWS credentials" in result.stderr
    assert "skipped branch-protection: GitHub not configured" in result.stderr
    assert "Traceback" not in result.stderr
    only_local = home.run("security_audit.py")
    assert only_local.returncode == 1 and "gates.yaml" in only_local.stdout


def test_script_takes_the_cron_lock(home):
    from lib import cli

    with cli.lock("security_audit"):
        result = home.run("security_audit.py", "--full")
    assert result.returncode == 3 and "security_audit is already running" in result.stderr
