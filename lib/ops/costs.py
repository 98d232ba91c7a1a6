"""The cost commands' writes and tables: the limits of config/cost_limits.yaml, the AWS Budget that enforces
the daily one, and the printing of an analysis (lib/insight/cost_analysis.py computes it).
"""

from __future__ import annotations

import json

import click

from lib import cli, config
from lib.adapters import aws
from lib.errors import ToolError, UsageError

BUDGET_THRESHOLDS = (80.0, 100.0)
BUDGET_SID = "AllowAWSBudgetsToPublish"


# ---- set_cost_limits.py -------------------------------------------------------------------------------

def write_limits(daily: float, per_cycle: float) -> dict:
    """config/cost_limits.yaml (atomically); returns the previous limits."""
    if per_cycle > daily:
        raise UsageError(f"--per-cycle {per_cycle:g} is above --daily {daily:g}", "a cycle must fit in a day")
    before = config.cost_limits()
    config.write_yaml_atomic(config.path_of("cost_limits"), {"daily_usd": daily, "per_cycle_usd": per_cycle})
    return {"daily_usd": before.get("daily_usd"), "per_cycle_usd": before.get("per_cycle_usd")}


def team_topic() -> str:
    """The notify-team topic's ARN, created when missing, with a policy that lets AWS Budgets publish."""
    sns = aws.client("sns")
    name = config.settings()["aws"]["sns_topics"]["notify-team"]
    with aws.aws_errors(f"create the SNS topic {name}"):
        arn = sns.create_topic(Name=name)["TopicArn"]
        policy = json.loads(sns.get_topic_attributes(TopicArn=arn)["Attributes"].get("Policy") or
                            '{"Version": "2012-10-17", "Statement": []}')
        if not any(s.get("Sid") == BUDGET_SID for s in policy.get("Statement", [])):
            policy.setdefault("Statement", []).append({
                "Sid": BUDGET_SID, "Effect": "Allow", "Principal": {"Service": "budgets.amazonaws.com"},
                "Action": "SNS:Publish", "Resource": arn})
            sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(policy))
    return arn


def _budget(name: str, daily: float) -> dict:
    return {"BudgetName": name, "BudgetType": "COST", "TimeUnit": "DAILY",
            "BudgetLimit": {"Amount": f"{daily:.2f}", "Unit": "USD"}}


def apply_budget(daily: float) -> dict:
    """Create or update the daily COST budget and its notifications to notify-team; idempotent."""
    budgets = aws.client("budgets")
    name = config.settings()["aws"]["budget_name"]
    account = aws.account_id()
    topic = team_topic()
    try:
        with aws.aws_errors(f"read the budget {name}"):
            current = budgets.describe_budget(AccountId=account, BudgetName=name)["Budget"]
    except aws.AWSNotFound:
        current = None
    if current is None:
        with aws.aws_errors(f"create the budget {name}"):
            budgets.create_budget(AccountId=account, Budget=_budget(name, daily))
        result = "created"
    elif float(current["BudgetLimit"]["Amount"]) != round(daily, 2) or current.get("TimeUnit") != "DAILY":
        with aws.aws_errors(f"update the budget {name}"):
            budgets.update_budget(AccountId=account, NewBudget=_budget(name, daily))
        result = "updated"
    else:
        result = "unchanged"
    with aws.aws_errors(f"read the notifications of {name}"):
        existing = budgets.describe_notifications_for_budget(AccountId=account, BudgetName=name).get(
            "Notifications", [])
    have = {(n["NotificationType"], float(n["Threshold"])) for n in existing}
    for threshold in BUDGET_THRESHOLDS:
        if ("ACTUAL", threshold) in have:
            continue
        with aws.aws_errors(f"add a notification to {name}"):
            budgets.create_notification(
                AccountId=account, BudgetName=name,
                Notification={"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN",
                              "Threshold": threshold, "ThresholdType": "PERCENTAGE"},
                Subscribers=[{"SubscriptionType": "SNS", "Address": topic}])
    return {"budget": name, "result": result, "limit_usd": round(daily, 2), "topic": topic}


def set_limits(daily: float, per_cycle: float, dry_run: bool, as_json: bool) -> None:
    """The file first, then the budget (which needs credentials); the audit line says whether the budget was set."""
    import click


    if dry_run:
        before = config.cost_limits()
        click.echo(f"would set daily ${daily:g} (now {before['daily_usd']}), per cycle ${per_cycle:g} "
                   f"(now {before['per_cycle_usd']}) and the budget {config.settings()['aws']['budget_name']}")
        return
    before = write_limits(daily, per_cycle)
    after = {"daily_usd": daily, "per_cycle_usd": per_cycle}
    cli.info(f"wrote {config.path_of('cost_limits')}")
    try:
        aws.require_credentials("set the AWS Budget (the local limits are written)")
        budget = apply_budget(daily)
    except ToolError:
        cli.audit("failed", before=before, after=after, budget="not set")
        raise
    cli.audit("set", before=before, after=after, budget=budget["result"])
    if as_json:
        cli.print_json({"before": before, "after": after, **budget})
    else:
        click.echo(f"daily ${before['daily_usd']} -> ${daily:g}, per cycle ${before['per_cycle_usd']} -> "
                   f"${per_cycle:g}; budget {budget['budget']} {budget['result']} (${budget['limit_usd']:.2f}/day, "
                   f"notifies {budget['topic'].rsplit(':', 1)[-1]})")


SHARE_COLUMNS = [("cost_usd", "USD"), ("share_pct", "%")]


def print_analysis(report: dict, breakdown: bool) -> None:
    """cost_analysis.py's tables: the period and trend, the top drivers, and with breakdown every grouping."""
    import click

    trend, period = report["trend"], report["period"]
    if trend["first_half_avg"] is None:  # under two days: no halves to compare, and no `$None/day`
        shown = trend["direction"]
    else:
        change = f"{trend['change_pct']}%" if trend["change_pct"] is not None else "-"
        shown = (f"{trend['direction']} ({change}, ${trend['first_half_avg']:.2f}/day -> "
                 f"${trend['second_half_avg']:.2f}/day)")
    click.echo(f"{period['start']} .. {period['end']} ({period['days']} days): ${report['total_usd']:.2f}; "
               f"trend {shown}\n\nTop drivers:")
    cli.print_table(report["top_drivers"], [("service", "SERVICE"), *SHARE_COLUMNS], empty="no costs in the period")
    if not breakdown:
        return
    for title, rows, key in (("By service", report["by_service"], "service"),
                             ("By agent (cost allocation tag)", report["by_agent"], "agent"),
                             ("By agent (tracked by evolutions)", report["by_agent_tracked"], "agent")):
        click.echo(f"\n{title}:")
        cli.print_table(rows, [(key, key.upper()), *SHARE_COLUMNS], empty="none")
    click.echo("\nBy evolution:")
    cli.print_table(report["by_evolution"], [("id", "EVOLUTION"), ("target", "TARGET"), ("focus", "FOCUS"),
                                             ("status", "STATUS"), ("cost_usd", "USD")], empty="none")


TRACKED_COLUMNS = [("cost_usd", "USD"), ("share_pct", "%"), ("tasks", "TASKS"), ("tokens_in", "TOKENS IN"),
                   ("tokens_cached", "CACHED"), ("tokens_out", "TOKENS OUT")]


def print_tracked(report: dict, breakdown: bool) -> None:
    """The tracked tables: agents always; with breakdown also days, models, phases and evolutions."""
    import click

    sections = [("By agent", "by_agent", "agent")]
    if breakdown:
        sections += [("By day", "by_day", "day"), ("By model", "by_model", "model"), ("By phase", "by_phase", "phase")]
    for title, name, key in sections:
        if name in report:
            click.echo(f"\n{title} (tracked):")
            cli.print_table(report[name], [(key, key.upper()), *TRACKED_COLUMNS], empty="no tasks")
    if breakdown and "by_evolution" in report:
        click.echo("\nBy evolution:")
        cli.print_table(report["by_evolution"], [("id", "EVOLUTION"), ("target", "TARGET"), ("focus", "FOCUS"),
                                                 ("status", "STATUS"), ("cost_usd", "USD")], empty="none")


def print_day(report: dict) -> None:
    """show_costs.py's report of one day: Cost Explorer by service against the daily limit, or the tracked
    costs when Cost Explorer was not the source; says which source it used."""
    limit = report["daily_limit_usd"]
    if report["source"] == "tracked":
        click.echo(f"{report['date']}: tracked ${report['tracked_usd']:.4f} ({len(report['evolutions'])} evolutions), "
                 "daily limit " + (f"${limit:.2f}" if limit else "not set"))
        print_tracked(report, breakdown=True)
    else:
        cli.print_table(report["services"], [("service", "SERVICE"), ("cost_usd", "USD"), ("share_pct", "%")],
                        empty=f"Cost Explorer has no costs for {report['date']}")
        click.echo(f"\n{report['date']}: AWS ${report['aws_total_usd']:.2f}, evolutions tracked "
                 f"${report['tracked_usd']:.2f} ({len(report['evolutions'])} evolutions), daily limit "
                 + (f"${limit:.2f} ({report['aws_share_of_limit_pct']}% used)" if limit else "not set "
                    "(python scripts/set_cost_limits.py --daily 100 --per-cycle 10)"))
    if report["over_limit"]:
        cli.info(f"warning: {report['date']} is over the daily limit of ${limit:.2f}")
    _source(report, f"Cost Explorer requests: {report['ce_requests']['made']} made, "
                    f"{report['ce_requests']['cached']} cached" if report["source"] != "tracked" else "")


def print_period(report: dict, breakdown: bool) -> None:
    """cost_analysis.py's report of a period: Cost Explorer's drivers, or the tracked costs; says which source."""
    if report["source"] == "tracked":
        period, trend = report["period"], report["trend"]
        click.echo(f"{period['start']} .. {period['end']} ({period['days']} days): tracked ${report['total_usd']:.4f} "
                 f"in {report['tasks']} tasks; trend {trend['direction']}")
        print_tracked(report, breakdown)
        _source(report, "")
        return
    print_analysis(report, breakdown)
    requests = report["ce_requests"]
    _source(report, f"Cost Explorer requests: {requests['made']} made (about ${requests['made'] * 0.01:.2f}), "
                    f"{requests['cached']} cached")


def _source(report: dict, requests_line: str) -> None:
    if report["source"] == "tracked":
        cli.info(f"source: tracked costs from the evolution store ({report['source_note']})")
        return
    cli.info(requests_line)
    cli.info("source: AWS Cost Explorer")
