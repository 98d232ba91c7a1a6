"""The AWS health checks in process, against moto."""

from __future__ import annotations

from aws_helpers import client, fresh_clients, make_function, registry  # noqa: F401
from botocore.stub import Stubber

from lib.health import aws_checks


def test_local_only_without_credentials_is_ok(tdev):
    for func in (aws_checks.credentials, aws_checks.alarms, aws_checks.budget):
        assert func({}) == ("ok", "not configured (local agents only)")
    assert aws_checks.agent_states({})[0] == "ok"


def test_aws_agents_without_credentials_is_unknown(tdev):
    registry(tdev, [{"name": "research-agent", "phase": "research", "runtime": "lambda"}])
    status, summary = aws_checks.credentials({})
    assert status == "unknown" and "research-agent" in summary


def test_credentials_agents_alarms_and_budget(tdev, aws):
    assert aws_checks.credentials({}) == ("ok", "account 123456789012 as arn:aws:sts::123456789012:user/moto, "
                                                "region us-east-1 (from AWS_REGION)")
    make_function("research-agent")
    registry(tdev, [{"name": "research-agent", "phase": "research", "runtime": "lambda"}])
    assert aws_checks.agent_states({}) == ("ok", "research-agent active")
    client("lambda").put_function_concurrency(FunctionName="research-agent", ReservedConcurrentExecutions=0)
    status, summary = aws_checks.agent_states({})
    assert status == "critical" and "research-agent stopped" in summary

    cloudwatch = client("cloudwatch")
    for name, namespace in (("HighCost", "TDeveloper"), ("SomeoneElse", "Other")):
        cloudwatch.put_metric_alarm(AlarmName=name, MetricName="M", Namespace=namespace, Statistic="Sum",
                                    Period=60, EvaluationPeriods=1, Threshold=1,
                                    ComparisonOperator="GreaterThanThreshold")
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
    assert aws_checks.alarms({}) == ("critical", "1 alarms in ALARM: HighCost")
    cloudwatch.set_alarm_state(AlarmName="HighCost", StateValue="OK", StateReason="test")
    assert aws_checks.alarms({}) == ("ok", "no project alarm in ALARM (1 other alarms of the account are)")

    assert aws_checks.budget({})[0] == "warning"
    client("budgets").create_budget(AccountId="123456789012", Budget={
        "BudgetName": "t-developer-daily", "BudgetType": "COST", "TimeUnit": "DAILY",
        "BudgetLimit": {"Amount": "100", "Unit": "USD"}})
    status, summary = aws_checks.budget({})
    assert status == "ok" and "$0.00 of $100.00" in summary


def test_budget_over_the_limit_is_critical(tdev, aws, monkeypatch):
    from lib.adapters import aws as aws_lib

    monkeypatch.setattr(aws_lib, "account_id", lambda: "123456789012")
    stub = Stubber(aws_lib.client("budgets"))
    stub.add_response("describe_budget", {"Budget": {
        "BudgetName": "t-developer-daily", "BudgetType": "COST", "TimeUnit": "DAILY",
        "BudgetLimit": {"Amount": "100", "Unit": "USD"},
        "CalculatedSpend": {"ActualSpend": {"Amount": "85", "Unit": "USD"}}}})
    stub.add_response("describe_budget", {"Budget": {
        "BudgetName": "t-developer-daily", "BudgetType": "COST", "TimeUnit": "DAILY",
        "BudgetLimit": {"Amount": "100", "Unit": "USD"},
        "CalculatedSpend": {"ActualSpend": {"Amount": "120", "Unit": "USD"}}}})
    with stub:
        assert aws_checks.budget({})[0] == "warning"
        assert aws_checks.budget({})[0] == "critical"
