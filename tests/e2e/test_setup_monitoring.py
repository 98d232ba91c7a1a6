"""setup_monitoring.py on a moto server: four dashboards, one alarm per alerts.yaml entry, SNS topics."""

from __future__ import annotations

import json

import boto3
import pytest

from lib.ops import monitoring

DASHBOARDS = {"TDeveloper-Main", "TDeveloper-Agent", "TDeveloper-Cost", "TDeveloper-Security"}
ALARMS = {"TDeveloper-EvolutionFailure", "TDeveloper-HighCost", "TDeveloper-SecurityViolation"}


def changes(result) -> dict[str, str]:
    return {c["name"]: c["change"] for c in json.loads(result.stdout)["changes"]}


def test_setup_creates_dashboards_alarms_and_topics(tdev, aws):
    result = tdev.run("setup_monitoring.py", "--json")
    assert result.returncode == 0, result.stderr
    assert set(changes(result).values()) == {"created"}
    cloudwatch, sns = boto3.client("cloudwatch"), boto3.client("sns")
    assert {d["DashboardName"] for d in cloudwatch.list_dashboards()["DashboardEntries"]} == DASHBOARDS
    topics = {t["TopicArn"].rsplit(":", 1)[-1]: t["TopicArn"] for t in sns.list_topics()["Topics"]}
    assert set(topics) == {"t-developer-notify-oncall", "t-developer-notify-team", "t-developer-page-security"}
    alarms = {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert set(alarms) == ALARMS
    failure = alarms["TDeveloper-EvolutionFailure"]
    assert (failure["Namespace"], failure["MetricName"], failure["Threshold"], failure["Period"]) == (
        "TDeveloper", "EvolutionSuccessRate", 70.0, 3600)
    assert failure["ComparisonOperator"] == "LessThanThreshold"  # success rate: higher is better
    assert failure["AlarmActions"] == [topics["t-developer-notify-oncall"]]
    cost = alarms["TDeveloper-HighCost"]
    assert (cost["ComparisonOperator"], cost["Threshold"], cost["Period"]) == ("GreaterThanThreshold", 20.0, 1800)
    assert cost["AlarmActions"] == [topics["t-developer-notify-team"]]
    security = alarms["TDeveloper-SecurityViolation"]
    assert (security["ComparisonOperator"], security["Threshold"], security["Period"]) == (
        "GreaterThanOrEqualToThreshold", 1.0, 300)  # a count: at least one finding
    assert security["AlarmActions"] == [topics["t-developer-page-security"]]
    assert security["TreatMissingData"] == "notBreaching"

    main = json.loads(cloudwatch.get_dashboard(DashboardName="TDeveloper-Main")["DashboardBody"])
    plotted = {w["properties"]["metrics"][0][1] for w in main["widgets"] if w["type"] == "metric"}
    assert plotted == {"EvolutionSuccessRate", "CycleTime", "CostPerCycle", "PRMergeRate", "ErrorRate"}
    (alarm_widget,) = [w for w in main["widgets"] if w["type"] == "alarm"]
    assert {arn.rsplit(":", 1)[-1] for arn in alarm_widget["properties"]["alarms"]} == ALARMS
    success = next(w for w in main["widgets"] if w["type"] == "metric"
                   and w["properties"]["metrics"][0][1] == "EvolutionSuccessRate")
    assert [a["value"] for a in success["properties"]["annotations"]["horizontal"]] == [70, 85]
    security_board = json.loads(cloudwatch.get_dashboard(DashboardName="TDeveloper-Security")["DashboardBody"])
    assert any(w["type"] == "metric" and w["properties"]["metrics"][0][1] == "SecurityGateFailures"
               for w in security_board["widgets"])
    audit = json.loads((tdev.history / "audit.log").read_text().splitlines()[-1])
    assert audit["result"] == "ok" and len(audit["changes"]) == 10


def test_second_run_changes_nothing_and_an_edit_updates_one_alarm(tdev, aws):
    assert tdev.run("setup_monitoring.py").returncode == 0
    again = tdev.run("setup_monitoring.py", "--json")
    assert set(changes(again).values()) == {"unchanged"}
    alerts = (tdev.config_dir / "alerts.yaml").read_text().replace("threshold: 20", "threshold: 25")
    tdev.write_config("alerts", alerts)
    edited = changes(tdev.run("setup_monitoring.py", "--json"))
    assert edited.pop("TDeveloper-HighCost") == "updated"
    assert set(edited.values()) == {"unchanged"}
    alarm = boto3.client("cloudwatch").describe_alarms(AlarmNames=["TDeveloper-HighCost"])["MetricAlarms"][0]
    assert alarm["Threshold"] == 25.0


@pytest.mark.parametrize(("flags", "env"), [(("--dry-run",), {}), ((), {"EVOLUTION_DRY_RUN": "true"})])
def test_dry_run_creates_nothing(tdev, aws, flags, env):
    result = tdev.run("setup_monitoring.py", *flags, env=env)
    assert result.returncode == 0, result.stderr
    assert "would create" in result.stdout and "10 of 10 resources would change" in result.stderr
    assert boto3.client("cloudwatch").list_dashboards()["DashboardEntries"] == []
    assert boto3.client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert boto3.client("sns").list_topics()["Topics"] == []
    assert json.loads((tdev.history / "audit.log").read_text())["result"] == "dry-run"


INTEGRATION_KEY = "0123456789abcdef0123456789abcdef"
CLOUDWATCH_URL = f"https://events.pagerduty.com/integration/{INTEGRATION_KEY}/enqueue"


def test_topics_are_subscribed_to_the_pagerduty_cloudwatch_integration(tdev, aws):
    tdev.write_config("notify", "routes:\n  notify-oncall:\n    - pagerduty:\n        routing_key_env: TDEV_PD_KEY\n"
                                "        cloudwatch_url_env: TDEV_PD_CLOUDWATCH_URL\n"
                                "  notify-team:\n    - slack: {webhook_url_env: TDEV_SLACK_WEBHOOK}\n")
    tdev.env["TDEV_PD_CLOUDWATCH_URL"] = CLOUDWATCH_URL
    dry = tdev.run("setup_monitoring.py", "--dry-run", "--json")
    assert changes(dry)["t-developer-notify-oncall"] == "would create"
    runs = [tdev.run("setup_monitoring.py", "--json") for _ in range(2)]
    first, second = ([c for c in json.loads(r.stdout)["changes"] if c["kind"] == "sns subscription"] for r in runs)
    assert first == [{"kind": "sns subscription", "name": "t-developer-notify-oncall", "change": "created",
                      "detail": "https -> PagerDuty CloudWatch integration (env:TDEV_PD_CLOUDWATCH_URL)"}]
    assert [c["change"] for c in second] == ["unchanged"]
    sns = boto3.client("sns")
    topics = {t["TopicArn"].rsplit(":", 1)[-1]: t["TopicArn"] for t in sns.list_topics()["Topics"]}
    (subscription,) = sns.list_subscriptions()["Subscriptions"]
    assert (subscription["TopicArn"], subscription["Protocol"], subscription["Endpoint"]) == (
        topics["t-developer-notify-oncall"], "https", CLOUDWATCH_URL)
    shown = "".join(r.stdout + r.stderr for r in (dry, *runs)) + (tdev.history / "audit.log").read_text()
    assert INTEGRATION_KEY not in shown


def test_a_missing_integration_url_is_one_error_line(tdev, aws):
    tdev.write_config("notify", "routes:\n  notify-oncall:\n    - pagerduty: {routing_key_env: TDEV_PD_KEY, "
                                "cloudwatch_url_env: TDEV_PD_CLOUDWATCH_URL}\n")
    result = tdev.run("setup_monitoring.py")
    assert result.returncode == 1 and result.stderr.startswith("error: TDEV_PD_CLOUDWATCH_URL is not set")
    assert len(result.stderr.splitlines()) == 1


def test_agent_dashboard_follows_the_registry(tdev, aws):
    tdev.write_config("agents", "agents:\n"
                      "  - {name: research-agent, phase: research, runtime: lambda, function_name: research-fn}\n"
                      "  - {name: planner-agent, phase: plan, runtime: ecs, cluster: c1, service: planner}\n"
                      "  - {name: refactor-agent, phase: implement, runtime: local}\n"
                      "  - {name: evaluator-agent, phase: evaluate, runtime: local}\n")
    assert tdev.run("setup_monitoring.py").returncode == 0
    body = json.loads(boto3.client("cloudwatch").get_dashboard(DashboardName="TDeveloper-Agent")["DashboardBody"])
    series = [m for w in body["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]]
    assert ["AWS/Lambda", "Errors", "FunctionName", "research-fn", {"stat": "Sum"}] in series
    assert ["AWS/ECS", "CPUUtilization", "ClusterName", "c1", "ServiceName", "planner"] in series
    text = next(w for w in body["widgets"] if w["type"] == "text")["properties"]["markdown"]
    assert "refactor-agent" in text and "evaluator-agent" in text


def test_without_credentials_one_error_line(tdev):
    result = tdev.run("setup_monitoring.py")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "credentials" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("alert", "expected"), [
    ({"metric": "ErrorRate"}, "GreaterThanThreshold"),
    ({"metric": "PRMergeRate"}, "LessThanThreshold"),
    ({"metric": "SomethingCounted"}, "GreaterThanOrEqualToThreshold"),
    ({"metric": "ErrorRate", "comparison": "<="}, "LessThanOrEqualToThreshold"),
    ({"metric": "ErrorRate", "comparison": "GreaterThanOrEqualToThreshold"}, "GreaterThanOrEqualToThreshold"),
])
def test_comparison_from_direction(tdev, alert, expected):
    assert monitoring.comparison(alert) == expected
