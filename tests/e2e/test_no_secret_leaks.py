"""End to end (issue 10, leaks): a secret an agent prints, or one inside GITHUB_API_URL, reaches no
output, log, store row, task artifact or backup; what is masked keeps enough to read (the host)."""

from __future__ import annotations

import json
import socket
import sqlite3
import sys
import textwrap

import pytest
import zstandard

from lib.store import open_store

GH_TOKEN = "ghp_" + "Zq7" * 12
AWS_KEY = "AKIA" + "Q7ZX" * 4
PASSWORD = "hunter2-is-not-a-good-one"
URL_SECRET = "s3cr3t-in-url-9f8e7d"
SECRETS = (GH_TOKEN, AWS_KEY, PASSWORD, URL_SECRET)


def leaked(text: str) -> list[str]:
    """The secrets found in text, whole or their first twelve characters (a token cut short)."""
    return [secret for secret in SECRETS if secret[:12] in text]


@pytest.mark.parametrize("ending, error_words", [
    ("sys.exit(3)", "xxx ***"),  # the error keeps the last stderr line's first 300 characters: half the token
    (f"print(json.dumps({{'status': 'error', 'error': 'login as {AWS_KEY} with password={PASSWORD} failed'}}))",
     "login as *** with password=*** failed"),
])
def test_agent_printing_tokens_leaks_nowhere(tdev, git_repo, ending, error_words):
    script = tdev.base / "agent_research.py"
    script.write_text(textwrap.dedent(f"""
        import json, sys
        json.load(sys.stdin)
        sys.stderr.write("connecting with {GH_TOKEN} and {AWS_KEY}\\n")
        sys.stderr.write("remote https://x-access-token:{URL_SECRET}@git.example.com/org/repo.git\\n")
        sys.stderr.write("db password={PASSWORD} refused\\n")
        sys.stderr.write("x" * 280 + " {GH_TOKEN}\\n")
    """) + ending + "\n")
    tdev.use_agents({"research": [sys.executable, script]})
    monitor = tdev.run("run_evolution.py", "--target", str(git_repo / "packages/agents"), "--monitor")
    assert monitor.returncode == 1
    assert not leaked(monitor.stdout + monitor.stderr)
    record = open_store().list_evolutions()[0]
    assert record["status"] == "failed" and error_words in record["error"]
    history = tdev.run("show_evolution_history.py", "--json")
    assert history.returncode == 0 and not leaked(history.stdout + history.stderr)
    db = sqlite3.connect(tdev.history / "state.db")
    rows = [*db.execute("SELECT error FROM evolutions"), *db.execute("SELECT error, output_summary FROM tasks")]
    assert rows and not leaked(json.dumps(rows))
    artifact = next((tdev.history / record["id"] / "tasks").glob("*.json"))
    stored = json.loads(artifact.read_text())
    assert not leaked(json.dumps(stored)) and stored["stderr_tail"][0].startswith("connecting with")
    assert "https://***@git.example.com/org/repo.git" in stored["stderr_tail"][1]  # the host is kept
    for log in (tdev.history / "current.log", *(tdev.history / record["id"]).glob("*.log"),
                tdev.history / record["id"] / "runner.stderr"):
        assert not leaked(log.read_text())
    backup = tdev.run("backup.py", "--daily", "--no-s3")
    assert backup.returncode == 0, backup.stderr
    archives = list(tdev.backup_dir.rglob("*.tar.zst"))
    assert archives
    for archive in archives:
        with open(archive, "rb") as handle:
            content = zstandard.ZstdDecompressor().stream_reader(handle).read()
        assert not leaked(content.decode("utf-8", "replace"))
    cat = tdev.run("analyze_failure.py", "--id", record["id"], "--json")
    assert cat.returncode in (0, 1) and not leaked(cat.stdout + cat.stderr)


def test_token_inside_github_api_url_is_masked_everywhere(tdev):
    with socket.socket() as probe:  # a port that refuses: GitHub unreachable at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tdev.env.update(GITHUB_API_URL=f"https://x-access-token:{URL_SECRET}@127.0.0.1:{port}/api",
                    GITHUB_TOKEN=GH_TOKEN, GITHUB_REPOSITORY="acme/agents")
    shown = f"https://***@127.0.0.1:{port}/api"  # scheme and host stay readable
    for command in (["health_check.py", "--full"], ["health_check.py", "--full", "--json"],
                    ["check_metrics.py", "--all"], ["check_metrics.py", "--all", "--json"],
                    ["show_metrics.py", "--trend"]):
        for debug in ("false", "true"):
            result = tdev.run(*command, env={"DEBUG": debug})
            assert not leaked(result.stdout + result.stderr), (command, debug)
            assert shown in result.stdout + result.stderr, (command, debug)
    crash = tdev.run("add_prevention_pattern.py", "--from-pr", "1", env={"DEBUG": "true"})
    assert crash.returncode == 1 and "Traceback" in crash.stderr
    assert not leaked(crash.stderr) and shown in crash.stderr.splitlines()[-1]
