"""The health checks of issue 4 (group full): MCP servers, GitHub API, last security audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from mcp_servers.helpers import script_server, write_config

from lib.health import github_checks as github_check
from lib.health import mcp as mcp_check
from lib.health import security as security_check
from lib.store import open_store
from lib.timeparse import iso, utcnow

# ---- MCP -----------------------------------------------------------------------------------

def test_mcp_check_without_config_warns(tdev):
    status, summary = mcp_check.mcp_servers({})
    assert status == "warning" and "init_evolution.py" in summary


def test_mcp_check_ok_and_broken_config(tdev):
    write_config(tdev.mcp_config, {"paged": script_server("paged_stdio")})
    status, summary = mcp_check.mcp_servers({})
    assert status == "ok" and summary.startswith("1/1 servers answered (paged ")
    tdev.mcp_config.write_text("[]")
    assert mcp_check.mcp_servers({})[0] == "critical"


# ---- GitHub --------------------------------------------------------------------------------

def test_github_check_not_configured_is_ok(tdev):
    assert github_check.github_api({}) == ("ok", "not configured (no GITHUB_TOKEN or GH_TOKEN): PRs are not "
                                                 "opened, branches are left")


def test_github_check_ok_low_and_exhausted(tdev, github):
    status, summary = github_check.github_api({})
    assert status == "ok" and "rate limit 4999/5000 left" in summary

    @github.route("GET", "/rate_limit")
    def low(standin, match, query, body):
        return 200, {"resources": {"core": {"limit": 5000, "remaining": 12, "reset": 1893456000}}}

    assert github_check.github_api({})[0] == "warning"
    github.rate_limited = True
    status, summary = github_check.github_api({})
    assert status == "critical" and "rate limit" in summary


def test_github_check_rejected_token_and_unknown_repo(tdev, github, monkeypatch):
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/nope")

    @github.route("GET", "/repos/acme/nope")
    def missing(standin, match, query, body):
        return 404, {"message": "Not Found"}

    status, summary = github_check.github_api({})
    assert status == "critical" and "acme/nope not found" in summary
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_wrongwrongwrongwrongwrongwrongwrong1")
    status, summary = github_check.github_api({})
    assert status == "critical" and "401" in summary and "wrong" not in summary


# ---- security --------------------------------------------------------------------------------

@pytest.mark.parametrize("last, status", [
    (None, "warning"),
    ({"time": iso(), "status": "ok", "full": True, "critical": 0, "warning": 0, "errors": 0}, "ok"),
    ({"time": iso(), "status": "critical", "full": True, "critical": 2, "warning": 0, "errors": 0}, "critical"),
    ({"time": iso(utcnow() - timedelta(days=20)), "status": "ok", "full": True, "critical": 0, "warning": 0,
      "errors": 0}, "warning"),
    ({"time": iso(), "status": "warning", "full": False, "critical": 0, "warning": 1, "errors": 0}, "warning"),
])
def test_security_check_reads_the_last_audit(tdev, last, status):
    if last:
        open_store(create=True).set_meta("security-audit", last)
    assert security_check.security_audit({})[0] == status
