"""lib/ops/costs.py in process: a budget update (moto has no UpdateBudget), the analysis line."""

from __future__ import annotations

from aws_helpers import fresh_clients  # noqa: F401
from botocore.stub import Stubber

from lib.insight import cost_analysis
from lib.ops import costs


def test_apply_budget_updates_a_changed_limit(tdev, aws, monkeypatch):
    """moto has no UpdateBudget: the update path runs against a Stubber."""
    from lib.adapters import aws as aws_lib

    budgets = aws_lib.client("budgets")
    monkeypatch.setattr(aws_lib, "account_id", lambda: "123456789012")
    stub = Stubber(budgets)
    name = "t-developer-daily"
    stub.add_response("describe_budget", {"Budget": {"BudgetName": name, "BudgetType": "COST", "TimeUnit": "DAILY",
                                                     "BudgetLimit": {"Amount": "100.0", "Unit": "USD"}}},
                      {"AccountId": "123456789012", "BudgetName": name})
    stub.add_response("update_budget", {}, {"AccountId": "123456789012", "NewBudget": {
        "BudgetName": name, "BudgetType": "COST", "TimeUnit": "DAILY",
        "BudgetLimit": {"Amount": "150.00", "Unit": "USD"}}})
    stub.add_response("describe_notifications_for_budget", {"Notifications": [
        {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN", "Threshold": t,
         "ThresholdType": "PERCENTAGE"} for t in (80.0, 100.0)]})
    with stub:
        assert costs.apply_budget(150)["result"] == "updated"
    stub.assert_no_pending_responses()


def test_the_analysis_line_of_too_few_days_says_so_without_none(capsys):
    report = {"trend": cost_analysis.trend([{"date": "d", "cost_usd": 1.0}]), "total_usd": 1.0, "top_drivers": [],
              "period": {"start": "2030-03-01", "end": "2030-03-01", "days": 1}}
    costs.print_analysis(report, breakdown=False)
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "2030-03-01 .. 2030-03-01 (1 days): $1.00; trend not enough days"
