"""Health checks of the AWS side: credentials (STS), each agent's status, CloudWatch alarms
in ALARM, the daily budget. A machine with local agents only and no credentials is fine."""

from __future__ import annotations

from lib import agents, config
from lib.adapters import aws
from lib.agents import fleet
from lib.health import check
from lib.insight import cost_analysis

AREA = "aws"
AWS_RUNTIMES = ("lambda", "ecs", "agentcore")
BUDGET_WARNING_PCT = 80.0


def _aws_agents() -> list[dict]:
    return [a for a in agents.registry() if a["runtime"] in AWS_RUNTIMES]


def _not_configured() -> bool:
    """No credentials and no agent on AWS: the AWS checks have nothing to look at."""

    return not aws.credentials_available() and not _aws_agents()


NOT_CONFIGURED = ("ok", "not configured (local agents only)")


@check("aws_credentials", AREA, groups=("basic", "post-recovery"), timeout=10)
def credentials(context: dict) -> tuple[str, str]:
    """STS GetCallerIdentity: the credentials of the standard chain work; which region the clients use, and why."""

    if _not_configured():
        return NOT_CONFIGURED
    name, source = aws.region_and_source()
    where = f"region {name} (from {source})"
    if not aws.credentials_available():
        names = ", ".join(a["name"] for a in _aws_agents())
        return "unknown", f"no AWS credentials, but agents run on AWS ({names}); set AWS_PROFILE; {where}"
    with aws.aws_errors(f"check the AWS credentials in {where}"):
        identity = aws.client("sts").get_caller_identity()
    return "ok", f"account {identity['Account']} as {identity['Arn']}, {where}"


@check("aws_agents", AREA, groups=("full", "post-recovery"), timeout=30)
def agent_states(context: dict) -> tuple[str, str]:
    """Each AWS agent's state (queried concurrently): stopped or unreadable is critical."""

    selected = _aws_agents()
    if not selected:
        return "ok", "no agents on AWS (local or command runtimes only)"
    rows = fleet.status_all(selected)
    down = [f"{r['name']} {r['state']}" for r in rows
            if not r["ok"] or r["state"].split(",")[0] in ("stopped", "failed", "inactive", "degraded")]
    erring = [f"{r['name']} {r['errors_last_hour']} errors" for r in rows if r.get("errors_last_hour")]
    if down:
        return "critical", f"{len(down)} of {len(rows)} agents down: {'; '.join(down)[:300]}"
    if erring:
        return "warning", f"errors in the last hour: {', '.join(erring)}"
    return "ok", ", ".join(f"{r['name']} {r['state']}" for r in rows)


def _project_alarm(alarm: dict, alert_names: set[str], namespace: str, resources: set[str]) -> bool:
    if alarm["AlarmName"] in alert_names or alarm.get("Namespace") == namespace:
        return True
    return any(d.get("Value") in resources for d in alarm.get("Dimensions", []))


@check("cloudwatch_alarms", AREA, groups=("full",), timeout=20)
def alarms(context: dict) -> tuple[str, str]:
    """The project's CloudWatch alarms in ALARM (alerts.yaml, namespace TDeveloper, the agents' resources)."""

    if _not_configured():
        return NOT_CONFIGURED
    alert_names = {a["name"] for a in config.load("alerts")["alerts"]}
    namespace = config.settings()["aws"]["cloudwatch_namespace"]
    resources = {a.get("function_name") or a.get("service") or a["name"] for a in _aws_agents()}
    with aws.aws_errors("read the CloudWatch alarms"):
        firing = aws.paginate(aws.client("cloudwatch"), "describe_alarms", "MetricAlarms", StateValue="ALARM")
    ours = sorted(a["AlarmName"] for a in firing if _project_alarm(a, alert_names, namespace, resources))
    if ours:
        return "critical", f"{len(ours)} alarms in ALARM: {', '.join(ours)}"
    others = len(firing) - len(ours)
    return "ok", "no project alarm in ALARM" + (f" ({others} other alarms of the account are)" if others else "")


@check("aws_budget", AREA, groups=("full",), timeout=20)
def budget(context: dict) -> tuple[str, str]:
    """The daily budget's actual spend against its limit."""

    if _not_configured():
        return NOT_CONFIGURED
    state = cost_analysis.budget_state()
    if state is None:
        return "warning", "no daily budget; set one: python scripts/set_cost_limits.py --daily 100 --per-cycle 10"
    summary = f"budget {state['name']}: ${state['actual_usd']:.2f} of ${state['limit_usd']:.2f} ({state['pct']:.0f}%)"
    if state["pct"] >= 100:
        return "critical", summary + " - over the limit: python scripts/cost_analysis.py --breakdown"
    if state["pct"] >= BUDGET_WARNING_PCT:
        return "warning", summary
    return "ok", summary
