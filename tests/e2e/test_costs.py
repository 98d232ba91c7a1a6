"""End to end: show_costs.py, cost_analysis.py and set_cost_limits.py against moto (CE, Budgets, SNS)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import yaml
from aws_helpers import client

from lib import timeparse
from tests.conftest import moto_post


def ce_result(days: list[str], groups_per_day: list[dict]) -> dict:
    return {"ResultsByTime": [
        {"TimePeriod": {"Start": day, "End": day}, "Total": {}, "Estimated": False,
         "Groups": [{"Keys": [key], "Metrics": {"UnblendedCost": {"Amount": str(amount), "Unit": "USD"}}}
                    for key, amount in groups.items()]}
        for day, groups in zip(days, groups_per_day, strict=True)]}


def queue(aws, *results) -> None:
    moto_post(aws["endpoint"], "/moto-api/static/ce/cost-and-usage-results", {"results": list(results)})


def seed_evolutions(day_start, costs_usd) -> None:
    from lib.store import open_store

    store = open_store(create=True)
    for index, cost in enumerate(costs_usd):
        started = timeparse.iso(day_start + timedelta(hours=2 + index))
        store.create_evolution({"id": f"evo-{index}", "target": f"t{index}", "focus": "quality", "cycles": 1,
                                "status": "succeeded", "started_at": started, "cost_usd": cost})
        store.create_task({"id": f"task-{index}", "evolution_id": f"evo-{index}", "phase": "research",
                           "agent": "research-agent" if index else "planner-agent", "status": "succeeded",
                           "started_at": started, "cost_usd": cost})
    store.close()


def test_show_costs_yesterday(tdev, aws):
    yesterday = timeparse.parse_date("yesterday")
    queue(aws, ce_result([yesterday.isoformat()], [{"AWS Lambda": 12.5, "Amazon Bedrock": 30.25}]))
    seed_evolutions(timeparse.day_bounds(yesterday)[0], [4.0, 6.5])
    tdev.write_config("cost_limits", "daily_usd: 40\nper_cycle_usd: 10\n")
    result = tdev.run("show_costs.py", "--date", "yesterday", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["services"][0] == {"service": "Amazon Bedrock", "cost_usd": 30.25, "share_pct": 70.8}
    assert report["aws_total_usd"] == 42.75 and report["tracked_usd"] == 10.5
    assert report["daily_limit_usd"] == 40 and report["over_limit"] is True
    assert report["ce_requests"] == {"made": 1, "cached": 0}
    table = tdev.run("show_costs.py", "--date", "yesterday")
    assert "Amazon Bedrock" in table.stdout and "daily limit $40.00 (106.9% used)" in table.stdout
    assert "over the daily limit" in table.stderr
    assert "Cost Explorer requests: 0 made, 1 cached" in table.stderr


def seed_model_tasks(day_start) -> None:
    """One evolution with a bedrock research task and an openai implement task, their tokens and models."""
    from lib.store import open_store

    store = open_store(create=True)
    started = timeparse.iso(day_start + timedelta(hours=3))
    store.create_evolution({"id": "evo-m", "target": "t", "focus": "docs", "cycles": 1, "status": "succeeded",
                            "started_at": started, "cost_usd": 0.75})
    for task_id, phase, agent, model, cost, cached in (
            ("task-r", "research", "research-agent", "amazon.nova-pro-v1:0", 0.25, 0),
            ("task-i", "implement", "refactor-agent", "qwen2.5-coder:32b", 0.5, 9000)):
        store.create_task({"id": task_id, "evolution_id": "evo-m", "phase": phase, "agent": agent, "model": model,
                           "status": "succeeded", "started_at": started, "cost_usd": cost, "tokens_in": 10000,
                           "tokens_out": 500, "tokens_cached": cached})
    store.close()


def test_show_costs_bad_date_and_aws_source_without_credentials(tdev):
    assert tdev.run("show_costs.py", "--date", "someday").returncode == 2
    result = tdev.run("show_costs.py", "--date", "yesterday", "--source", "aws")
    assert result.returncode == 1 and "no AWS credentials" in result.stderr


def test_without_cost_explorer_the_tracked_costs_are_shown_and_the_source_said(tdev):
    today = timeparse.parse_date("today")
    seed_model_tasks(timeparse.day_bounds(today)[0])
    result = tdev.run("show_costs.py", "--date", "today", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["source"] == "tracked" and "no AWS credentials" in report["source_note"]
    assert report["tracked_usd"] == 0.75 and [e["id"] for e in report["evolutions"]] == ["evo-m"]
    assert report["by_model"][0] == {"model": "qwen2.5-coder:32b", "cost_usd": 0.5, "tasks": 1, "tokens_in": 10000,
                                     "tokens_out": 500, "tokens_cached": 9000, "share_pct": 66.7}
    assert [p["phase"] for p in report["by_phase"]] == ["implement", "research"]
    table = tdev.run("show_costs.py", "--date", "today")
    assert table.returncode == 0 and "By model (tracked):" in table.stdout and "amazon.nova-pro-v1:0" in table.stdout
    assert "source: tracked costs from the evolution store (Cost Explorer not configured" in table.stderr
    analysis = tdev.run("cost_analysis.py", "--breakdown", "--days", "3", "--json")
    assert analysis.returncode == 0, analysis.stderr
    report = json.loads(analysis.stdout)
    assert report["source"] == "tracked" and report["total_usd"] == 0.75
    assert report["by_agent"][0]["agent"] == "refactor-agent" and len(report["by_day"]) == 1
    assert report["trend"]["daily"][-1]["cost_usd"] == 0.75
    breakdown = tdev.run("cost_analysis.py", "--breakdown", "--days", "3", "--source", "tracked")
    assert breakdown.returncode == 0 and "By phase (tracked):" in breakdown.stdout
    assert "asked for with --source tracked" in breakdown.stderr


def test_an_unreachable_cost_explorer_falls_back_to_tracked_costs(tdev):
    seed_model_tasks(timeparse.day_bounds(timeparse.parse_date("yesterday"))[0])
    unreachable = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                   "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    result = tdev.run("show_costs.py", "--date", "yesterday", env=unreachable)
    assert result.returncode == 0, result.stderr
    assert "source: tracked costs from the evolution store (Cost Explorer unreachable" in result.stderr
    assert "refactor-agent" in result.stdout
    strict = tdev.run("show_costs.py", "--date", "yesterday", "--source", "aws", env=unreachable)
    assert strict.returncode == 1 and strict.stderr.startswith("error: ")


def test_cost_analysis_breakdown_caches_answers(tdev, aws):
    end = timeparse.utcnow().date()
    days = [(end - timedelta(days=4 - i)).isoformat() for i in range(4)]
    queue(aws,
          ce_result(days, [{"AWS Lambda": 1, "Amazon Bedrock": 2}, {"AWS Lambda": 1, "Amazon Bedrock": 2},
                           {"AWS Lambda": 2, "Amazon Bedrock": 6}, {"AWS Lambda": 2, "Amazon Bedrock": 6}]),
          ce_result([days[0]], [{"agent$research-agent": 15, "agent$planner-agent": 5, "agent$": 2}]))
    seed_evolutions(timeparse.day_bounds(end - timedelta(days=2))[0], [3.0, 1.0])
    result = tdev.run("cost_analysis.py", "--breakdown", "--days", "4", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["total_usd"] == 22.0
    assert [d["service"] for d in report["top_drivers"]] == ["Amazon Bedrock", "AWS Lambda"]
    assert report["by_agent"][0] == {"agent": "research-agent", "cost_usd": 15.0, "share_pct": 68.2}
    assert {a["agent"] for a in report["by_agent"]} == {"research-agent", "planner-agent", "(untagged)"}
    assert report["by_agent_tracked"][0]["agent"] == "planner-agent"
    assert [e["id"] for e in report["by_evolution"]] == ["evo-0", "evo-1"]
    assert report["trend"]["direction"] == "rising" and report["trend"]["change_pct"] == 166.7
    assert report["ce_requests"] == {"made": 2, "cached": 0}
    assert len(list((tdev.history / "cache").glob("ce-*.json"))) == 2

    table = tdev.run("cost_analysis.py", "--breakdown", "--days", "4")
    assert "Top drivers:" in table.stdout and "By evolution:" in table.stdout and "research-agent" in table.stdout
    assert "Cost Explorer requests: 0 made (about $0.00), 2 cached" in table.stderr
    summary = tdev.run("cost_analysis.py", "--days", "4", "--refresh")
    assert "By service:" not in summary.stdout and "2 made" in summary.stderr


def test_set_cost_limits_writes_config_budget_and_notification(tdev, aws):
    result = tdev.run("set_cost_limits.py", "--daily", "100", "--per-cycle", "10")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load((tdev.config_dir / "cost_limits.yaml").read_text()) == {
        "daily_usd": 100.0, "per_cycle_usd": 10.0}
    assert "budget t-developer-daily created ($100.00/day, notifies t-developer-notify-team)" in result.stdout
    account = client("sts").get_caller_identity()["Account"]
    budget = client("budgets").describe_budget(AccountId=account, BudgetName="t-developer-daily")["Budget"]
    assert budget["TimeUnit"] == "DAILY" and budget["BudgetType"] == "COST"
    assert float(budget["BudgetLimit"]["Amount"]) == 100.0
    notes = client("budgets").describe_notifications_for_budget(AccountId=account, BudgetName="t-developer-daily")
    assert sorted(float(n["Threshold"]) for n in notes["Notifications"]) == [80.0, 100.0]
    topics = [t["TopicArn"] for t in client("sns").list_topics()["Topics"]]
    assert any(t.endswith(":t-developer-notify-team") for t in topics)
    policy = json.loads(client("sns").get_topic_attributes(TopicArn=topics[0])["Attributes"]["Policy"])
    assert any(s.get("Sid") == "AllowAWSBudgetsToPublish" for s in policy["Statement"])

    again = tdev.run("set_cost_limits.py", "--daily", "100", "--per-cycle", "10", "--json")
    assert json.loads(again.stdout)["result"] == "unchanged"
    notes = client("budgets").describe_notifications_for_budget(AccountId=account, BudgetName="t-developer-daily")
    assert len(notes["Notifications"]) == 2
    audit = [json.loads(line) for line in (tdev.history / "audit.log").read_text().splitlines()]
    assert audit[0]["before"] == {"daily_usd": None, "per_cycle_usd": None}
    assert audit[1]["before"] == {"daily_usd": 100.0, "per_cycle_usd": 10.0}


def test_set_cost_limits_refuses_bad_values_and_dry_run(tdev, aws):
    assert tdev.run("set_cost_limits.py", "--daily", "-5", "--per-cycle", "1").returncode == 2
    result = tdev.run("set_cost_limits.py", "--daily", "5", "--per-cycle", "10")
    assert result.returncode == 2 and "a cycle must fit in a day" in result.stderr
    dry = tdev.run("set_cost_limits.py", "--daily", "50", "--per-cycle", "5", "--dry-run")
    assert dry.returncode == 0 and "would set daily $50" in dry.stdout
    assert not (tdev.config_dir / "cost_limits.yaml").exists()


def test_set_cost_limits_without_credentials_still_writes_the_file(tdev):
    result = tdev.run("set_cost_limits.py", "--daily", "100", "--per-cycle", "10")
    assert result.returncode == 1 and "no AWS credentials" in result.stderr
    assert yaml.safe_load((tdev.config_dir / "cost_limits.yaml").read_text())["daily_usd"] == 100.0
    assert json.loads((tdev.history / "audit.log").read_text())["result"] == "failed"


@pytest.mark.parametrize("amount", ["0", "abc"])
def test_per_cycle_must_be_a_positive_number(tdev, amount):
    assert tdev.run("set_cost_limits.py", "--daily", "10", "--per-cycle", amount).returncode == 2


def test_cost_analysis_of_one_day_never_prints_none(tdev, aws):
    day = (timeparse.utcnow().date() - timedelta(days=1)).isoformat()
    queue(aws, ce_result([day], [{"AWS Lambda": 1}]))
    result = tdev.run("cost_analysis.py", "--days", "1")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert "None" not in result.stdout and first.endswith("$1.00; trend not enough days"), first
