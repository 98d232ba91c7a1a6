"""notify.yaml's schema (credentials by name only), the routing of statuses to alert actions,
who hears about a status change, and the heartbeat settings."""

from __future__ import annotations

import json
import shutil
import socket

import pytest
from hooks_standin import ROUTING_KEY, SLACK_PATH, HooksStandIn

from lib import checks, config, paths
from lib.errors import ConfigError, ToolError, UsageError
from lib.hooks import heartbeat, notify

TEAM_PATH = "/services/T0STANDIN/B0TEAM/teamWebhookSecret"


def load_notify(tdev, text: str) -> dict:
    tdev.write_config("notify", text)
    return config.load("notify")


def test_the_shipped_example_is_valid_and_no_file_means_nothing_configured(tdev):
    assert config.notify() is None
    shutil.copyfile(paths.CODE_ROOT / "config" / "notify.yaml.example", tdev.config_dir / "notify.yaml")
    routes = config.notify()["routes"]
    assert notify.routes(config.notify(), "notify-oncall") == [
        notify.Route("pagerduty", "env:TDEV_PD_ONCALL_KEY", "env:TDEV_PD_ONCALL_CLOUDWATCH_URL")]
    assert notify.routes(config.notify(), "page-security") == [
        notify.Route("pagerduty", "secret:t-developer/pagerduty-security")]
    assert set(routes) == set(config.ALERT_ACTIONS)


@pytest.mark.parametrize(("text", "words"), [
    (f"routes:\n  notify-oncall:\n    - pagerduty: {{routing_key: {ROUTING_KEY}}}\n",
     "routes.notify-oncall[0].pagerduty.routing_key: a literal key or URL is refused; name an environment "
     "variable (routing_key_env) or a Secrets Manager secret (routing_key_secret)"),
    ("routes:\n  notify-team:\n    - slack: {webhook_url: 'https://hooks.slack.com/services/T/B/x'}\n",
     "routes.notify-team[0].slack.webhook_url: a literal key or URL is refused"),
    (f"routes:\n  notify-oncall:\n    - pagerduty: {{routing_key_env: {ROUTING_KEY}}}\n",
     "this looks like a key itself"),
    ("routes:\n  notify-team:\n    - slack: {webhook_url_secret: 'https://hooks.slack.com/services/T/B/x'}\n",
     "expected a Secrets Manager secret name or ARN"),
    ("routes:\n  notify-team:\n    - slack: {webhook_url_env: slack_hook}\n",
     "expected the name of an environment variable"),
    ("routes:\n  notify-team:\n    - slack: {webhook_url_env: A, webhook_url_secret: b}\n",
     "expected one of webhook_url_env, webhook_url_secret"),
    ("routes:\n  notify-oncall:\n    - pagerduty: {cloudwatch_url_env: CW}\n", "expected one of routing_key_env"),
    ("routes:\n  notify-team:\n    - {slack: {webhook_url_env: A}, pagerduty: {routing_key_env: B}}\n",
     "expected exactly one of pagerduty, slack"),
    ("routes:\n  notify-everyone:\n    - slack: {webhook_url_env: A}\n", "unknown alert action"),
    ("routes:\n  notify-team:\n    - email: {to: a@b.c}\n", "unknown key 'email'"),
    ("pagerduty_url: events.pagerduty.com\n", "expected an http(s) URL"),
])
def test_bad_notify_files_are_one_config_error(tdev, text, words):
    with pytest.raises(ConfigError) as raised:
        load_notify(tdev, text)
    assert words in str(raised.value) and "notify.yaml" in str(raised.value)
    assert ROUTING_KEY not in str(raised.value) and "hooks.slack.com" not in str(raised.value)


@pytest.mark.parametrize(("command", "status", "action"), [
    ("health_check", "ok", None), ("health_check", "warning", "notify-team"),
    ("health_check", "unknown", "notify-team"), ("health_check", "critical", "notify-oncall"),
    ("security_audit", "critical", "page-security"), ("security_audit", "warning", "notify-team"),
])
def test_status_to_alert_action(command, status, action):
    assert notify.action_for(command, status) == action


@pytest.fixture
def hooks(tdev, monkeypatch):
    """PagerDuty and two Slack rooms (on-call and team) on the stand-in, named by the environment."""
    standin = HooksStandIn().start()
    monkeypatch.setenv("TDEV_PAGERDUTY_URL", standin.pagerduty_url)
    monkeypatch.setenv("PD_KEY", ROUTING_KEY)
    monkeypatch.setenv("ONCALL_ROOM", standin.slack_url)
    monkeypatch.setenv("TEAM_ROOM", standin.url + TEAM_PATH)
    load_notify(tdev, "routes:\n  notify-oncall:\n    - pagerduty: {routing_key_env: PD_KEY}\n"
                      "    - slack: {webhook_url_env: ONCALL_ROOM}\n"
                      "  notify-team:\n    - slack: {webhook_url_env: TEAM_ROOM}\n")
    yield standin
    standin.stop()


def report(status: str) -> checks.Report:
    failing = [] if status == "ok" else [{"name": "store", "status": status, "summary": "db"}]
    return checks.Report("HEALTH", status, failing, "1 check")


def test_whoever_heard_of_a_problem_hears_each_change_and_its_end(tdev, hooks):
    for status in ("warning", "warning", "critical", "critical", "warning", "ok", "ok"):
        assert notify.send("health_check", report(status)) == []
    heard = {room: [text.split()[2] for text in hooks.slack_texts(path)]  # ':warning: HEALTH WARNING: ...'
             for room, path in (("team", TEAM_PATH), ("oncall", SLACK_PATH))}
    assert heard == {"team": ["WARNING:", "CRITICAL:", "WARNING:", "OK:"], "oncall": ["CRITICAL:", "WARNING:", "OK:"]}
    assert [(e["event_action"], e.get("payload", {}).get("severity")) for e in hooks.events()] == [
        ("trigger", "critical"), ("resolve", None)]  # the downgrade leaves the incident open until OK
    state = json.loads(notify.state_path().read_text())["checks"]["health_check"]
    assert (state["status"], state["pagerduty"], state["slack"]) == ("ok", {}, {})


def test_a_corrupt_state_file_is_set_aside_and_the_page_still_goes_out(tdev, hooks):
    notify.state_path().parent.mkdir(parents=True, exist_ok=True)
    notify.state_path().write_text("{not json")
    (warning,) = notify.send("health_check", report("critical"))
    assert warning.startswith(f"warning: --notify: {notify.state_path()} was corrupt (JSONDecodeError: ")
    (aside,) = notify.state_path().parent.glob("notify-state.json.corrupt-*")
    assert aside.read_text() == "{not json" and aside.name in warning
    assert [e["event_action"] for e in hooks.events()] == ["trigger"]
    assert json.loads(notify.state_path().read_text())["version"] == notify.STATE_VERSION


@pytest.mark.parametrize("text", ["[]", '{"version": 9, "checks": {}}', '{"checks": {}}',
                                  '{"version": 2, "checks": {"health_check": {"pagerduty": {"env:K": "x"}}}}',
                                  '{"commands": {"health_check": {"slack": {"env:S": 3}}}}', "[" * 100000])
def test_state_of_an_unknown_shape_or_version_is_corrupt(tdev, hooks, text):
    notify.state_path().parent.mkdir(parents=True, exist_ok=True)
    notify.state_path().write_text(text)
    (warning,) = notify.send("health_check", report("critical"))
    assert "was corrupt" in warning and len(list(notify.state_path().parent.glob("*.corrupt-*"))) == 1
    assert [e["event_action"] for e in hooks.events()] == ["trigger"]


def test_each_schedule_of_a_command_has_its_own_incident(tdev, hooks):
    host = socket.gethostname()
    assert notify.send("health_check", report("critical"), "full") == []
    assert notify.send("health_check", report("ok")) == []  # the basic check is fine: the full one's page stays
    assert [(e["event_action"], e["dedup_key"]) for e in hooks.events()] == [
        ("trigger", f"tdev:{host}:health_check:full")]
    assert notify.send("health_check", report("ok"), "full") == []
    assert hooks.incidents[f"tdev:{host}:health_check:full"]["status"] == "resolved"


def test_an_incident_opened_under_the_version_1_key_is_still_resolved(tdev, hooks):
    old_key = f"tdev:{socket.gethostname()}:health_check"
    notify.state_path().parent.mkdir(parents=True, exist_ok=True)
    notify.state_path().write_text(json.dumps({"commands": {"health_check": {
        "status": "critical", "pagerduty": {"env:PD_KEY": {"severity": "critical", "dedup_key": old_key}},
        "slack": {"env:ONCALL_ROOM": "critical"}}}}))
    assert notify.send("health_check", report("critical"), "full") == []  # the full schedule opens its own
    assert notify.send("health_check", report("ok")) == []
    assert [(e["event_action"], e["dedup_key"]) for e in hooks.events()] == [
        ("trigger", f"{old_key}:full"), ("resolve", old_key)]
    state = json.loads(notify.state_path().read_text())
    assert state["version"] == 2 and set(state["checks"]) == {"health_check", "health_check:full"}
    assert state["checks"]["health_check"]["pagerduty"] == {}


def test_upgraded_keeps_a_current_state_and_refuses_what_is_not_one():
    current = {"version": 2, "checks": {"mcp.test": {"status": "ok"}}}
    assert notify.upgraded(current) == {"version": 2, "checks": {"mcp.test": {
        "status": "ok", "pagerduty": {}, "slack": {}}}}
    assert notify.upgraded({"commands": {}}) == {"version": 2, "checks": {}}
    assert notify.upgraded({"version": 2, "checks": {"x": []}}) is None


def test_a_route_test_says_what_each_destination_answered(tdev, hooks, monkeypatch):
    rows = notify.send_test()
    assert [(r["route"], r["kind"], r["credential"], r["ok"]) for r in rows] == [
        ("notify-oncall", "pagerduty", "env PD_KEY", True), ("notify-oncall", "slack", "env ONCALL_ROOM", True),
        ("notify-team", "slack", "env TEAM_ROOM", True)]
    assert rows[0]["answers"][0].startswith('trigger: HTTP 202: {"status": "success"')
    assert rows[0]["answers"][1].startswith("resolve: HTTP 202")
    assert rows[1]["answers"] == ["message: HTTP 200: ok"]
    test_key = f"tdev:{socket.gethostname()}:notify-test:notify-oncall"
    assert hooks.incidents == {test_key: hooks.incidents[test_key]} and hooks.incidents[test_key]["status"] == (
        "resolved")
    assert "notify test" in hooks.slack_texts(TEAM_PATH)[0]
    assert not notify.state_path().exists()  # a test opens nothing a check would resolve

    monkeypatch.setenv("PD_KEY", "not-the-key")
    (row,) = [r for r in notify.send_test("notify-oncall") if r["kind"] == "pagerduty"]
    assert not row["ok"] and row["answers"][0].startswith("trigger: failed: 127.0.0.1 answered HTTP 400")
    assert row["answers"][1] == "resolve: not sent"
    with pytest.raises(UsageError, match="has no route page-security; choose one of notify-oncall, notify-team"):
        notify.send_test("page-security")


def test_heartbeat_urls_are_urls_or_take_a_placeholder(tdev, monkeypatch):
    tdev.write_config("settings", "monitoring:\n  heartbeat_urls:\n    backup: hc-ping.com/abc\n")
    with pytest.raises(ConfigError, match="monitoring.heartbeat_urls.backup: expected an http"):
        config.load("settings")
    monkeypatch.setenv("HC_KEY", "k3y")
    assert heartbeat.expand("https://hc-ping.com/${HC_KEY}/backup/") == "https://hc-ping.com/k3y/backup"
    with pytest.raises(ToolError, match="HC_MISSING is not set"):
        heartbeat.expand("https://hc-ping.com/${HC_MISSING}/backup")


def test_every_ping_of_a_run_carries_its_run_id(tdev, hooks):
    tdev.write_config("settings", f"monitoring:\n  heartbeat_urls:\n    backup: {hooks.ping_url}\n")
    warnings = []
    first, second = heartbeat.Heartbeat("backup", warnings.append), heartbeat.Heartbeat("backup", warnings.append)
    first.start()
    second.start()
    second.finish(False)
    first.finish(True)
    assert warnings == []
    assert hooks.ping_runs() == [("/start", first.run_id), ("/start", second.run_id), ("/fail", second.run_id),
                                 ("", first.run_id)]
    assert first.run_id != second.run_id
