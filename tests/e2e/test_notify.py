"""--notify end to end against local PagerDuty Events v2 and Slack webhook stand-ins: a warning
reaches the team, a critical pages once per dedup key, OK again resolves it; a failed delivery
leaves the exit code alone and is sent on the next run; no key or webhook URL shows anywhere.
Each schedule pages apart (health_check:full), an incident of the old state file is still
resolved, a closed output pipe or a corrupt state file swallows no page; notify.py --test."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from audit_helpers import GITHUB_TOKEN_VALUE
from backup_helpers import local_only
from evolution_seed import add_evolution, stamp, task_id
from hooks_standin import ROUTING_KEY, SLACK_PATH, HooksStandIn
from mcp_servers.helpers import end_all, leftovers, script_server, write_config

NOW = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
ROUTES = """\
pagerduty_url: https://events.pagerduty.com/v2/enqueue
routes:
  notify-oncall:
    - pagerduty:
        routing_key_env: TDEV_PD_ONCALL_KEY
    - slack:
        webhook_url_env: TDEV_SLACK_WEBHOOK
  notify-team:
    - slack:
        webhook_url_env: TDEV_SLACK_WEBHOOK
  page-security:
    - pagerduty:
        routing_key_secret: t-developer/pagerduty-security
"""
SECRETS = (ROUTING_KEY, SLACK_PATH.rsplit("/", 1)[-1])


@pytest.fixture
def hooks(tdev):
    """The stand-ins, reached through TDEV_PAGERDUTY_URL and the routes' variables; notify.yaml written."""
    standin = HooksStandIn().start()
    tdev.env.update(TDEV_PAGERDUTY_URL=standin.pagerduty_url, TDEV_PD_ONCALL_KEY=ROUTING_KEY,
                    TDEV_SLACK_WEBHOOK=standin.slack_url)
    path = tdev.write_config("notify", ROUTES)
    os.chmod(path, 0o600)
    yield standin
    standin.stop()


@pytest.fixture
def far_evolution(tdev, store):
    """An evolution running on another host, its implement phase two hours old: past TIMEOUT_SECONDS."""
    tdev.pin_clock(NOW)
    record = add_evolution(store, status="running", finished_at=None, host="far-away", pid=4242,
                           started=NOW - timedelta(hours=3), heartbeat_at=stamp(NOW))
    store.create_task({"id": task_id(NOW), "evolution_id": record["id"], "cycle": 1, "phase": "implement",
                       "agent": "refactor-agent", "status": "running", "started_at": stamp(NOW - timedelta(hours=2)),
                       "trace_id": "0" * 32})
    return record


def leaked(tdev, *results) -> list[str]:
    """Where a routing key or webhook secret shows: the runs' output, the history folder, the logs."""
    places = {f"run {i}": r.stdout + r.stderr for i, r in enumerate(results)}
    for folder in (tdev.history, tdev.log_dir):
        for path in folder.rglob("*") if folder.exists() else []:
            if path.is_file() and path.suffix != ".db":
                places[str(path)] = path.read_text(errors="replace")
    return [where for where, text in places.items() if any(secret in text for secret in SECRETS)]


def test_warning_to_the_team_critical_pages_once_ok_resolves(tdev, store, hooks, far_evolution):
    dedup_key = f"tdev:{socket.gethostname()}:check_stuck_processes"

    warning = tdev.run("check_stuck_processes.py", "--notify")
    assert warning.returncode == 1 and warning.stderr == "", warning.stderr
    assert hooks.events() == []  # notify-team has no PagerDuty route
    (posted,) = hooks.slack_texts()
    assert posted.startswith(f":warning: STUCK WARNING: {far_evolution['id']} phase-timeout")

    store.update_evolution(far_evolution["id"], {"heartbeat_at": stamp(NOW - timedelta(hours=1))})
    critical = [tdev.run("check_stuck_processes.py", "--notify") for _ in range(2)]
    assert [r.returncode for r in critical] == [2, 2] and critical[0].stderr == ""
    (trigger,) = hooks.events()  # the second CRITICAL run sends nothing new
    assert (trigger["event_action"], trigger["dedup_key"], trigger["routing_key"]) == ("trigger", dedup_key,
                                                                                       ROUTING_KEY)
    payload = trigger["payload"]
    assert payload["summary"] == critical[0].stdout.splitlines()[0].split(" | ")[0]
    assert payload["summary"].startswith(f"STUCK CRITICAL: {far_evolution['id']} heartbeat-stale; WARNING: ")
    assert (payload["source"], payload["severity"]) == (socket.gethostname(), "critical")
    assert {c["name"] for c in payload["custom_details"]["failing_checks"]} == {
        f"{far_evolution['id']} heartbeat-stale", f"{far_evolution['id']} phase-timeout"}
    assert len(hooks.slack_texts()) == 2 and "STUCK CRITICAL" in hooks.slack_texts()[1]
    assert hooks.incidents[dedup_key]["status"] == "triggered"

    store.update_evolution(far_evolution["id"], {"status": "failed", "finished_at": stamp(NOW)})
    ok = [tdev.run("check_stuck_processes.py", "--notify") for _ in range(2)]
    assert [r.returncode for r in ok] == [0, 0]
    assert [(e["event_action"], e["dedup_key"]) for e in hooks.events()] == [("trigger", dedup_key),
                                                                              ("resolve", dedup_key)]
    assert list(hooks.incidents) == [dedup_key] and hooks.incidents[dedup_key]["status"] == "resolved"
    assert len(hooks.slack_texts()) == 3 and hooks.slack_texts()[2].startswith(":white_check_mark: STUCK OK")
    assert leaked(tdev, warning, *critical, *ok) == []


def test_failed_delivery_keeps_the_exit_code_and_is_sent_next_run(tdev, store, hooks, far_evolution):
    store.update_evolution(far_evolution["id"], {"heartbeat_at": stamp(NOW - timedelta(hours=1))})
    hooks.fail_with = 503
    outage = tdev.run("check_stuck_processes.py", "--notify")
    assert outage.returncode == 2 and outage.stdout.startswith("STUCK CRITICAL: ")
    problems = outage.stderr.splitlines()
    assert len(problems) == 2 and all(line.startswith("warning: --notify: ") for line in problems)
    assert "PagerDuty trigger (env:TDEV_PD_ONCALL_KEY): 127.0.0.1 answered HTTP 503" in problems[0]
    assert problems[1].startswith("warning: --notify: Slack post (env:TDEV_SLACK_WEBHOOK): 127.0.0.1 answered HTTP")

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/v2/enqueue"
    unreachable = tdev.run("check_stuck_processes.py", "--notify", env={"TDEV_PAGERDUTY_URL": closed})
    assert unreachable.returncode == 2 and "cannot reach 127.0.0.1" in unreachable.stderr

    hooks.fail_with = None
    retried = tdev.run("check_stuck_processes.py", "--notify")
    assert retried.returncode == 2 and retried.stderr == "", retried.stderr
    assert hooks.events()[-1]["event_action"] == "trigger" and hooks.incidents  # delivered now
    assert "STUCK CRITICAL" in hooks.slack_texts()[-1]
    assert leaked(tdev, outage, unreachable, retried) == []


def test_missing_variable_is_reported_by_name_and_json_output_is_unchanged(tdev, store, hooks, far_evolution):
    del tdev.env["TDEV_SLACK_WEBHOOK"]
    result = tdev.run("check_stuck_processes.py", "--json", "--notify")
    assert result.returncode == 1 and result.stdout.startswith("{")
    assert result.stderr.strip() == ("warning: --notify: Slack post (env:TDEV_SLACK_WEBHOOK): TDEV_SLACK_WEBHOOK is "
                                     "not set; export TDEV_SLACK_WEBHOOK (config/notify.yaml names it); tried again "
                                     "next run")


def test_without_notify_yaml_it_says_so_once(tdev, store):
    add_evolution(store, status="running", finished_at=None, host="far-away", pid=4242,
                  heartbeat_at=stamp(datetime.now(UTC) - timedelta(hours=1)))
    result = tdev.run("check_stuck_processes.py", "--notify")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"note: --notify: {tdev.config_dir / 'notify.yaml'} does not exist; "
                                          "nothing was sent"]


def test_a_literal_key_in_notify_yaml_is_reported_without_changing_the_result(tdev, store):
    tdev.write_config("notify", f"routes:\n  notify-oncall:\n    - pagerduty: {{routing_key: {ROUTING_KEY}}}\n")
    result = tdev.run("check_stuck_processes.py", "--notify")
    assert result.returncode == 0
    assert "routes.notify-oncall[0].pagerduty.routing_key: a literal key or URL is refused" in result.stderr
    assert ROUTING_KEY not in result.stderr


def test_security_findings_page_security_with_the_key_from_secrets_manager(home, aws, hooks):
    boto3.client("secretsmanager").create_secret(Name="t-developer/pagerduty-security", SecretString=ROUTING_KEY)
    (home.base / ".env").write_text(f"GITHUB_TOKEN={GITHUB_TOKEN_VALUE}\n")
    os.chmod(home.base / ".env", 0o600)
    result = home.run("security_audit.py", "--notify")
    assert result.returncode == 2 and result.stderr == "", result.stderr
    (trigger,) = hooks.events()
    assert trigger["dedup_key"] == f"tdev:{socket.gethostname()}:security_audit"
    assert trigger["payload"]["summary"].startswith("SECURITY CRITICAL: plaintext-secrets (1 finding(s)")
    assert GITHUB_TOKEN_VALUE not in str(trigger)
    assert hooks.slack_texts() == []  # page-security routes to PagerDuty only
    assert leaked(home, result) == []


@pytest.mark.parametrize("command", ["health_check.py", "check_stuck_processes.py", "check_metrics.py",
                                     "security_audit.py", "verify_restore.py", "-m mcp.test"])
def test_every_check_command_takes_notify(tdev, command):
    result = tdev.run(command, "--notify", "--help")
    assert result.returncode == 0 and "--notify" in result.stdout, result.stderr


# ---- one incident per schedule (DESIGN §9) -------------------------------------------------------


@pytest.fixture
def healthy(tdev, store):
    """An installation whose basic health check is OK: local backups only, and a fresh one."""
    local_only(tdev)
    backup = tdev.run("backup.py", "--daily")
    assert backup.returncode == 0, backup.stderr


def test_the_full_check_pages_apart_and_the_basic_one_never_resolves_it(tdev, healthy, hooks):
    write_config(tdev.mcp_config, {"exits": script_server("exits_at_once")})  # only --full asks MCP servers
    try:
        runs = [tdev.run("health_check.py", "--notify", *args) for args in (["--full"], [], ["--full"], [])]
    finally:
        end_all(leftovers(tdev.mcp_log_dir))
    assert [r.returncode for r in runs] == [2, 0, 2, 0], runs[1].stdout
    full_key = f"tdev:{socket.gethostname()}:health_check:full"
    assert [(e["event_action"], e["dedup_key"]) for e in hooks.events()] == [("trigger", full_key)]
    assert hooks.incidents[full_key]["status"] == "triggered"
    state = json.loads((tdev.history / "notify-state.json").read_text())
    assert state["version"] == 2 and state["checks"]["health_check"]["status"] == "ok"
    assert state["checks"]["health_check:full"]["pagerduty"]["env:TDEV_PD_ONCALL_KEY"]["dedup_key"] == full_key


def test_an_incident_opened_before_the_upgrade_is_resolved_under_its_old_key(tdev, healthy, hooks):
    old_key = f"tdev:{socket.gethostname()}:health_check"
    tdev.history.mkdir(exist_ok=True)
    (tdev.history / "notify-state.json").write_text(json.dumps({"commands": {"health_check": {
        "status": "critical", "checked_at": "2024-01-15T11:00:00+00:00",
        "pagerduty": {"env:TDEV_PD_ONCALL_KEY": {"severity": "critical", "dedup_key": old_key}},
        "slack": {"env:TDEV_SLACK_WEBHOOK": "critical"}}}}))
    result = tdev.run("health_check.py", "--notify")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert [(e["event_action"], e["dedup_key"]) for e in hooks.events()] == [("resolve", old_key)]
    assert hooks.slack_texts()[0].startswith(":white_check_mark: HEALTH OK")
    assert json.loads((tdev.history / "notify-state.json").read_text())["checks"]["health_check"]["pagerduty"] == {}


# ---- a closed output pipe (DESIGN §9) -----------------------------------------------------------


def run_into_closed_pipe(tdev, script: str, *args: str, buffered: bool = False) -> subprocess.CompletedProcess:
    """The script with its stdout a pipe whose reader is already gone: every write fails with EPIPE
    (buffered: only when Python flushes, at the latest on the way out)."""
    reader, writer = os.pipe()
    os.close(reader)
    env = {key: value for key, value in tdev.env.items() if not (buffered and key == "PYTHONUNBUFFERED")}
    command = [sys.executable, *script.split()] if script.startswith("-m ") else [sys.executable, str(SCRIPTS / script)]
    try:
        return subprocess.run([*command, *args], stdout=writer, stderr=subprocess.PIPE, text=True, env=env,
                              timeout=120, cwd=SCRIPTS.parent)
    finally:
        os.close(writer)


@pytest.mark.parametrize(("as_json", "buffered"), [([], False), (["--json"], False), ([], True)])
def test_a_closed_pipe_keeps_the_page_and_the_exit_code(tdev, store, hooks, far_evolution, as_json, buffered):
    store.update_evolution(far_evolution["id"], {"heartbeat_at": stamp(NOW - timedelta(hours=1))})
    result = run_into_closed_pipe(tdev, "check_stuck_processes.py", "--notify", *as_json, buffered=buffered)
    assert result.returncode == 2 and result.stderr == "", result.stderr
    assert [e["event_action"] for e in hooks.events()] == ["trigger"]
    assert "STUCK CRITICAL" in hooks.slack_texts()[0]


def test_health_check_piped_to_head_pages_and_exits_critical(tdev, store, hooks):
    write_config(tdev.mcp_config, {"exits": script_server("exits_at_once")})
    script = SCRIPTS / "health_check.py"
    try:
        shell = subprocess.run(["bash", "-c", f'"{sys.executable}" "{script}" --full --notify | head -1; '
                                              'echo "exit=${PIPESTATUS[0]}"'],
                               env=tdev.env, capture_output=True, text=True, timeout=120)
        closed = run_into_closed_pipe(tdev, "health_check.py", "--full", "--notify")
    finally:
        end_all(leftovers(tdev.mcp_log_dir))
    first, last = shell.stdout.splitlines()
    assert first.startswith("HEALTH CRITICAL: ") and last == "exit=2", shell.stdout
    assert "Traceback" not in shell.stderr and "BrokenPipe" not in shell.stderr, shell.stderr
    assert closed.returncode == 2 and closed.stderr == "", closed.stderr
    (trigger,) = hooks.events()  # the second run finds the incident open at that severity
    assert trigger["dedup_key"].endswith(":health_check:full")


def test_mcp_test_into_a_closed_pipe_pages_and_exits_critical(tdev, hooks):
    """mcp.test prints its table with print(), buffered (no PYTHONUNBUFFERED): the page goes out before it."""
    write_config(tdev.mcp_config, {"exits": script_server("exits_at_once")})
    try:
        result = run_into_closed_pipe(tdev, "-m mcp.test", "--notify", buffered=True)
    finally:
        end_all(leftovers(tdev.mcp_log_dir))
    assert result.returncode == 2 and result.stderr == "", result.stderr
    assert [e["event_action"] for e in hooks.events()] == ["trigger"]


# ---- a corrupt state file (DESIGN §9) -----------------------------------------------------------


def test_a_corrupt_state_file_is_set_aside_and_a_new_critical_still_pages(tdev, store, hooks, far_evolution):
    store.update_evolution(far_evolution["id"], {"heartbeat_at": stamp(NOW - timedelta(hours=1))})
    tdev.history.mkdir(exist_ok=True)
    (tdev.history / "notify-state.json").write_bytes(b'{"version": 2, "checks": {"chec\xff')
    result = tdev.run("check_stuck_processes.py", "--notify")
    assert result.returncode == 2
    (warning,) = result.stderr.splitlines()
    (aside,) = tdev.history.glob("notify-state.json.corrupt-*")
    assert warning.startswith("warning: --notify: ") and "was corrupt" in warning and aside.name in warning
    assert aside.read_bytes() == b'{"version": 2, "checks": {"chec\xff'
    assert [e["event_action"] for e in hooks.events()] == ["trigger"] and len(hooks.slack_texts()) == 1
    again = tdev.run("check_stuck_processes.py", "--notify")  # the fresh state remembers the page
    assert again.returncode == 2 and again.stderr == "" and len(hooks.events()) == 1


# ---- notify.py --test ---------------------------------------------------------------------------


def test_notify_test_sends_through_every_route_and_says_what_each_answered(home, aws, hooks):
    boto3.client("secretsmanager").create_secret(Name="t-developer/pagerduty-security", SecretString=ROUTING_KEY)
    result = home.run("notify.py", "--test")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    rows = result.stdout.splitlines()[2:]
    assert [row.split()[:5] for row in rows] == [
        ["notify-oncall", "pagerduty", "env", "TDEV_PD_ONCALL_KEY", "ok"],
        ["notify-oncall", "slack", "env", "TDEV_SLACK_WEBHOOK", "ok"],
        ["notify-team", "slack", "env", "TDEV_SLACK_WEBHOOK", "ok"],
        ["page-security", "pagerduty", "secret", "t-developer/pagerduty-security", "ok"]]
    assert "trigger: HTTP 202: " in rows[0] and "; resolve: HTTP 202: " in rows[0]
    assert "message: HTTP 200: ok" in rows[1]
    host = socket.gethostname()
    assert [(e["event_action"], e["dedup_key"]) for e in hooks.events()] == [
        ("trigger", f"tdev:{host}:notify-test:notify-oncall"), ("resolve", f"tdev:{host}:notify-test:notify-oncall"),
        ("trigger", f"tdev:{host}:notify-test:page-security"), ("resolve", f"tdev:{host}:notify-test:page-security")]
    assert all(incident["status"] == "resolved" for incident in hooks.incidents.values())
    assert len(hooks.slack_texts()) == 2 and "notify test" in hooks.slack_texts()[0]
    assert not (home.history / "notify-state.json").exists()
    (line,) = [json.loads(text) for text in (home.history / "audit.log").read_text().splitlines()]
    assert (line["result"], line["failed"]) == ("ok", 0)
    assert leaked(home, result) == []


def test_notify_test_of_one_route_as_json_and_a_failing_route_exits_1(tdev, hooks):
    tdev.env["TDEV_PD_ONCALL_KEY"] = "0" * 32  # a key PagerDuty refuses
    result = tdev.run("notify.py", "--test", "--route", "notify-oncall", "--json")
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is False and [r["kind"] for r in document["routes"]] == ["pagerduty", "slack"]
    pagerduty, slack = document["routes"]
    assert pagerduty["answers"][0].startswith("trigger: failed: 127.0.0.1 answered HTTP 400: ")
    assert pagerduty["answers"][1] == "resolve: not sent" and slack["ok"] is True
    hooks.fail_with = 503
    outage = tdev.run("notify.py", "--test", "--route", "notify-team")
    assert outage.returncode == 1 and "FAILED" in outage.stdout and "answered HTTP 503" in outage.stdout
    assert leaked(tdev, result, outage) == []


@pytest.mark.parametrize(("args", "words"), [
    ([], "error: nothing to do; pass --test"),
    (["--test", "--route", "notify-everyone"], "has no route notify-everyone; choose one of notify-oncall, "
                                               "notify-team, page-security"),
    (["--test", "--bogus"], "No such option '--bogus'"),
])
def test_notify_usage_errors_exit_2(tdev, hooks, args, words):
    result = tdev.run("notify.py", *args)
    assert result.returncode == 2 and words in result.stderr and len(result.stderr.splitlines()) == 1
    assert hooks.requests == []


def test_notify_test_without_notify_yaml_says_so(tdev):
    result = tdev.run("notify.py", "--test")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {tdev.config_dir / 'notify.yaml'} does not exist; copy ")


def test_every_schedule_of_a_check_command_keeps_its_own_state_and_key(tdev, healthy, hooks):
    (archive,) = tdev.backup_dir.rglob("*.tar.zst")
    write_config(tdev.mcp_config, {"exits": script_server("exits_at_once")})
    runs = [("check_metrics.py", "--gates-only"), ("check_metrics.py", "--metrics-only"),
            ("verify_restore.py", "--archive", str(archive)), ("-m mcp.test", "exits"), ("security_audit.py", "--full")]
    try:
        results = [tdev.run(script, "--notify", *args) for script, *args in runs]
    finally:
        end_all(leftovers(tdev.mcp_log_dir))
    assert all(r.returncode in (0, 1, 2, 3) and "--notify" not in r.stderr for r in results), [
        r.stderr for r in results]
    state = json.loads((tdev.history / "notify-state.json").read_text())["checks"]
    assert set(state) == {"check_metrics:gates", "check_metrics:metrics", "verify_restore:archive",
                          "mcp.test:exits", "security_audit:full"}
    assert results[3].returncode == 2  # the one MCP server exits at once: CRITICAL pages under its own key
    assert f"tdev:{socket.gethostname()}:mcp.test:exits" in hooks.incidents
