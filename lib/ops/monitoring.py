"""CloudWatch set-up: the runbook's four dashboards (Main, Agent, Cost, Security), one alarm per
config/alerts.yaml entry, the SNS topic of each alert action and its HTTPS subscriptions to the
PagerDuty CloudWatch integration URLs of config/notify.yaml (so that an alarm pages). Idempotent:
each resource is compared with what exists and reported as created, updated or unchanged.
An integration URL carries its key, so it is never shown: a subscription is named by where
its URL comes from (env:NAME or secret:NAME)."""

from __future__ import annotations

import json

from lib import config
from lib.adapters import aws
from lib.agents.ecs import EcsRuntime
from lib.hooks import notify
from lib.insight import metrics

DASHBOARDS = ("Main", "Agent", "Cost", "Security")
COMPARISONS = {
    "<": "LessThanThreshold", "<=": "LessThanOrEqualToThreshold",
    ">": "GreaterThanThreshold", ">=": "GreaterThanOrEqualToThreshold",
}  # fmt: skip
RED, GREEN = "#d62728", "#2ca02c"


def namespace() -> str:
    return config.settings()["aws"]["cloudwatch_namespace"]


def dashboard_name(kind: str) -> str:
    """TDeveloper-Main, TDeveloper-Agent, ..."""
    return f"{namespace()}-{kind}"


def alarm_name(alert: dict) -> str:
    """The CloudWatch alarm of an alerts.yaml entry: TDeveloper-EvolutionFailure."""
    return f"{namespace()}-{alert['name']}"


def _threshold_of(metric: str) -> dict | None:
    """The thresholds.yaml entry of a CloudWatch metric name (EvolutionSuccessRate -> success_rate)."""

    for name, entry in metrics.thresholds().items():
        if entry.get("metric", metrics.CLOUDWATCH_NAMES.get(name)) == metric:
            return entry
    return None


def comparison(alert: dict) -> str:
    """The alert's own comparison, else from the metric's direction (min: <, max: >), else >= for counts."""
    given = alert.get("comparison")
    if given:
        return COMPARISONS.get(given.strip(), given.strip())
    threshold = _threshold_of(alert["metric"])
    if threshold:
        return COMPARISONS["<" if threshold["direction"] == "min" else ">"]
    return COMPARISONS[">="]


def alarm_spec(alert: dict, topic_arn: str) -> dict:
    """put_metric_alarm arguments for one alert (alarm when the metric crosses for one period)."""
    threshold = _threshold_of(alert["metric"])
    what = threshold.get("action") if threshold else "see the runbook"
    return {
        "AlarmName": alarm_name(alert),
        "AlarmDescription": f"T-Developer {alert['name']}: {alert['metric']} {comparison(alert)} {alert['threshold']:g}"
                            f" over {alert['period']} s; {what}. Managed by setup_monitoring.py.",
        "Namespace": namespace(),
        "MetricName": alert["metric"],
        "Statistic": "Average" if threshold else "Maximum",
        "Period": alert["period"],
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": 1,
        "Threshold": float(alert["threshold"]),
        "ComparisonOperator": comparison(alert),
        "TreatMissingData": "notBreaching",
        "ActionsEnabled": True,
        "AlarmActions": [topic_arn],
    }


# ---- dashboards -------------------------------------------------------------------------------


def _metric_widget(title: str, metrics: list, stat: str = "Average", annotations: list | None = None,
                   period: int = 300) -> dict:
    properties = {"title": title, "metrics": metrics, "view": "timeSeries", "stat": stat, "period": period,
                  "region": aws.region()}
    if annotations:
        properties["annotations"] = {"horizontal": annotations}
    return {"type": "metric", "properties": properties}


def _key_metric_widgets(names: tuple) -> list[dict]:

    limits = metrics.thresholds()
    widgets = []
    for name in names:
        entry = limits.get(name, {})
        metric = entry.get("metric", metrics.CLOUDWATCH_NAMES[name])
        marks = [{"label": f"{level} {metrics.describe_bound(entry, level)}", "value": entry[level], "color": color}
                 for level, color in (("alert", RED), ("normal", GREEN)) if entry.get(level) is not None]
        widgets.append(_metric_widget(f"{entry.get('label', metric)} ({entry.get('unit', '')})".replace(" ()", ""),
                                      [[namespace(), metric]], annotations=marks))
    return widgets


def _text(markdown: str) -> dict:
    return {"type": "text", "properties": {"markdown": markdown}}


def _alarm_widget(title: str, arns: list[str]) -> list[dict]:
    return [{"type": "alarm", "properties": {"title": title, "alarms": arns}}] if arns else []


def _agent_widgets() -> list[dict]:
    widgets, elsewhere = [], []
    for agent in config.agents():
        runtime = agent["runtime"]
        if runtime == "lambda":
            fn = ["FunctionName", agent.get("function_name", agent["name"])]
            widgets.append(_metric_widget(f"{agent['name']} (Lambda)", [
                ["AWS/Lambda", "Invocations", *fn, {"stat": "Sum"}], ["AWS/Lambda", "Errors", *fn, {"stat": "Sum"}],
                ["AWS/Lambda", "Throttles", *fn, {"stat": "Sum"}],
                ["AWS/Lambda", "Duration", *fn, {"stat": "p95", "yAxis": "right"}]]))
        elif runtime == "ecs" and (ecs := EcsRuntime(agent)).service:  # a task agent has no service metrics
            dims = ["ClusterName", ecs.cluster, "ServiceName", ecs.service]
            widgets.append(_metric_widget(f"{agent['name']} (ECS)", [
                ["AWS/ECS", "CPUUtilization", *dims], ["AWS/ECS", "MemoryUtilization", *dims]]))
        else:
            elsewhere.append(f"- **{agent['name']}** ({agent['phase']}, runtime `{runtime}`)")
    if elsewhere:
        widgets.append(_text("### Agents without CloudWatch service metrics\n" + "\n".join(elsewhere)
                             + "\n\nTheir failures count in ErrorRate; per-agent durations: "
                               "`python scripts/analyze_performance.py --week`"))
    return widgets


def dashboard_bodies(alarm_arns: dict[str, list[str]]) -> dict[str, dict]:
    """The four dashboards' bodies; alarm_arns maps an alert action to its alarms' ARNs."""
    everything = [arn for arns in alarm_arns.values() for arn in arns]
    limits = config.cost_limits()
    budget = config.settings()["aws"]["budget_name"]
    cost_text = (f"### Cost limits\nDaily: {_usd(limits['daily_usd'])}; per cycle: {_usd(limits['per_cycle_usd'])} "
                 f"(config/cost_limits.yaml). AWS Budget `{budget}`.\n\n"
                 "Breakdown: `python scripts/cost_analysis.py --breakdown`")
    bodies = {
        "Main": [*_alarm_widget("T-Developer alarms", everything),
                 *_key_metric_widgets(("success_rate", "cycle_time", "cost_per_cycle", "pr_merge_rate", "error_rate"))],
        "Agent": [*_key_metric_widgets(("error_rate", "cycle_time")), *_agent_widgets()],
        "Cost": [*_key_metric_widgets(("cost_per_cycle",)),
                 _metric_widget("Estimated AWS charges (USD)",
                                [["AWS/Billing", "EstimatedCharges", "Currency", "USD"]], stat="Maximum", period=21600),
                 _text(cost_text)],
        "Security": [*_alarm_widget("Security alarms", alarm_arns.get("page-security", [])),
                     _metric_widget("Security gate failures (count)", [[namespace(), "SecurityGateFailures"]],
                                    stat="Maximum"),
                     _text("### Security\nFindings feed SecurityGateFailures. Audit: "
                           "`python scripts/security_audit.py --full`; gates: `python scripts/check_metrics.py "
                           "--verbose`.")],
    }
    return {dashboard_name(kind): {"widgets": _layout(widgets)} for kind, widgets in bodies.items()}


def _usd(value) -> str:
    return "not set" if value is None else f"${value:g}"


def _layout(widgets: list[dict]) -> list[dict]:
    """Two columns of 12 x 6 cells, in order."""
    return [{**w, "x": 12 * (i % 2), "y": 6 * (i // 2), "width": 12, "height": 6} for i, w in enumerate(widgets)]


# ---- apply --------------------------------------------------------------------------------------


def _topics(dry_run: bool) -> tuple[dict[str, str], list[dict]]:
    """ARN per alert action (creating missing topics), and what was done."""
    sns = aws.client("sns")
    wanted = {alert["action"] for alert in config.load("alerts")["alerts"]}
    names = config.settings()["aws"]["sns_topics"]
    with aws.aws_errors("list SNS topics"):
        existing = {arn.rsplit(":", 1)[-1]: arn for arn in
                    (t["TopicArn"] for t in aws.paginate(sns, "list_topics", "Topics"))}
    arns, changes = {}, []
    for action in sorted(wanted):
        name = names.get(action, f"t-developer-{action}")
        if name in existing:
            arns[action] = existing[name]
            changes.append({"kind": "sns topic", "name": name, "change": "unchanged"})
        elif dry_run:
            arns[action] = f"arn:aws:sns:{aws.region()}:{_account()}:{name}"
            changes.append({"kind": "sns topic", "name": name, "change": "would create"})
        else:
            with aws.aws_errors(f"create SNS topic {name}"):
                arns[action] = sns.create_topic(Name=name)["TopicArn"]
            changes.append({"kind": "sns topic", "name": name, "change": "created"})
    return arns, changes


def _subscriptions(topic_arns: dict[str, str], topic_changes: list[dict], dry_run: bool) -> list[dict]:
    """Subscribe each topic to its action's PagerDuty CloudWatch integration URLs (HTTPS); never unsubscribe."""
    wanted = notify.cloudwatch_urls()
    sns = aws.client("sns")
    new_topics = {c["name"] for c in topic_changes if c["change"] == "would create"}
    changes = []
    for action, arn in sorted(topic_arns.items()):
        if not wanted.get(action):
            continue
        topic = arn.rsplit(":", 1)[-1]
        existing = set()
        if topic not in new_topics:
            with aws.aws_errors(f"list the subscriptions of SNS topic {topic}"):
                existing = {s["Endpoint"] for s in aws.paginate(sns, "list_subscriptions_by_topic", "Subscriptions",
                                                                TopicArn=arn) if s["Protocol"] == "https"}
        for ref, url in wanted[action]:
            if url in existing:
                change = "unchanged"
            elif dry_run:
                change = "would create"
            else:
                with aws.aws_errors(f"subscribe SNS topic {topic} to the PagerDuty integration of {ref}"):
                    sns.subscribe(TopicArn=arn, Protocol="https", Endpoint=url)
                change = "created"
            changes.append({"kind": "sns subscription", "name": topic, "change": change,
                            "detail": f"https -> PagerDuty CloudWatch integration ({ref})"})
    return changes


def _account() -> str:
    with aws.aws_errors("find the AWS account (sts get-caller-identity)"):
        return aws.client("sts").get_caller_identity()["Account"]


_ALARM_FIELDS = ("AlarmDescription", "Namespace", "MetricName", "Statistic", "Period", "EvaluationPeriods",
                 "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData", "ActionsEnabled",
                 "AlarmActions")


def _alarm_change(cloudwatch, spec: dict, current: dict | None, dry_run: bool) -> str:
    """Put the alarm unless it already matches; what happened."""
    if current and all(current.get(f) == spec[f] for f in _ALARM_FIELDS):
        return "unchanged"
    if dry_run:
        return "would update" if current else "would create"
    with aws.aws_errors(f"put CloudWatch alarm {spec['AlarmName']}"):
        cloudwatch.put_metric_alarm(**spec)
    return "updated" if current else "created"


def _alarms(topic_arns: dict, dry_run: bool) -> tuple[dict[str, list[str]], list[dict]]:
    """One alarm per alerts.yaml entry; returns the alarms' ARNs per action (for the dashboards) and changes."""
    cloudwatch = aws.client("cloudwatch")
    specs = [(alert, alarm_spec(alert, topic_arns[alert["action"]])) for alert in config.load("alerts")["alerts"]]
    if not specs:
        return {}, []
    with aws.aws_errors("describe CloudWatch alarms"):
        found = {a["AlarmName"]: a for a in cloudwatch.describe_alarms(
            AlarmNames=[spec["AlarmName"] for _, spec in specs]).get("MetricAlarms", [])}
    prefix = None if len(found) == len(specs) else f"arn:aws:cloudwatch:{aws.region()}:{_account()}:alarm:"
    arns: dict[str, list[str]] = {}
    changes = []
    for alert, spec in specs:
        current = found.get(spec["AlarmName"])
        change = _alarm_change(cloudwatch, spec, current, dry_run)
        arns.setdefault(alert["action"], []).append(current["AlarmArn"] if current else prefix + spec["AlarmName"])
        changes.append({"kind": "alarm", "name": spec["AlarmName"], "change": change,
                        "detail": f"{spec['MetricName']} {spec['ComparisonOperator']} {spec['Threshold']:g}, "
                                  f"{spec['Period']} s -> {alert['action']}"})
    return arns, changes


def _dashboards(bodies: dict[str, dict], dry_run: bool) -> list[dict]:
    cloudwatch = aws.client("cloudwatch")
    changes = []
    for name, body in bodies.items():
        try:
            with aws.aws_errors(f"read dashboard {name}"):
                current = json.loads(cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"])
        except aws.AWSNotFound:
            current = None
        if current == body:
            change = "unchanged"
        elif dry_run:
            change = "would update" if current is not None else "would create"
        else:
            with aws.aws_errors(f"put dashboard {name}"):
                cloudwatch.put_dashboard(DashboardName=name, DashboardBody=json.dumps(body))
            change = "updated" if current is not None else "created"
        changes.append({"kind": "dashboard", "name": name, "change": change,
                        "detail": f"{len(body['widgets'])} widgets"})
    return changes


def setup(dry_run: bool = False) -> list[dict]:
    """Topics and their subscriptions, then alarms, then dashboards (the alarm widgets need the alarms' ARNs)."""
    topic_arns, changes = _topics(dry_run)
    changes += _subscriptions(topic_arns, changes, dry_run)
    alarm_arns, alarm_changes = _alarms(topic_arns, dry_run)
    return changes + alarm_changes + _dashboards(dashboard_bodies(alarm_arns), dry_run)
