"""Cost analysis: Cost Explorer (cached: each request costs money), the evolutions' own tracked cost, and
the state of the AWS Budget that enforces the daily limit. Read-only: set_cost_limits.py's writes and the
tables are lib/ops/costs.py's.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta

from lib import config, paths, timeparse
from lib.adapters import aws
from lib.errors import ToolError
from lib.fsutil import atomic_write
from lib.store import Store

METRIC = "UnblendedCost"
#: Cost Explorer keeps revising the last days; answers about older days never change.
FINAL_AFTER_DAYS = 2
FRESH_SECONDS = 6 * 3600



def _amount(metrics: dict) -> float:
    return float(metrics.get(METRIC, {}).get("Amount", 0) or 0)


def utc_today() -> date:
    return timeparse.utcnow().date()


class CostExplorer:
    """GetCostAndUsage with an answer cache in evolution_history/cache/; counts the paid requests."""

    def __init__(self, refresh: bool = False):
        self.refresh = refresh
        self.requests = 0
        self.cached = 0
        self.folder = paths.history_dir() / "cache"

    def _cache_path(self, request: dict):
        digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:24]
        return self.folder / f"ce-{digest}.json"

    def _from_cache(self, request: dict, end: date) -> list | None:
        path = self._cache_path(request)
        if self.refresh or not path.exists():
            return None
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        final = end <= utc_today() - timedelta(days=FINAL_AFTER_DAYS)
        age = (timeparse.utcnow() - timeparse.from_iso(entry["fetched_at"])).total_seconds()
        return entry["results"] if final or age < FRESH_SECONDS else None

    def cost_and_usage(self, start: date, end: date, group_by: dict | None, granularity: str = "DAILY") -> list:
        """ResultsByTime for [start, end) (UTC days), grouped by one dimension or tag."""
        request = {"TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()}, "Granularity": granularity,
                   "Metrics": [METRIC]}
        if group_by:
            request["GroupBy"] = [group_by]
        cached = self._from_cache(request, end)
        if cached is not None:
            self.cached += 1
            return cached
        results, token = [], None
        client = aws.client("ce")
        while True:
            with aws.aws_errors("ask Cost Explorer"):
                page = client.get_cost_and_usage(**request, **({"NextPageToken": token} if token else {}))
            self.requests += 1
            results.extend(page.get("ResultsByTime", []))
            token = page.get("NextPageToken")
            if not token:
                break
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self._cache_path(request), json.dumps({"fetched_at": timeparse.iso(), "request": request,
                                                            "results": results}))
        return results

    def counts(self) -> dict:
        return {"made": self.requests, "cached": self.cached}


def totals_by_group(results: list, strip_prefix: str = "") -> dict:
    """{group key: total} over every period (tag keys come as 'agent$name'; untagged as 'agent$')."""
    totals: dict[str, float] = {}
    for period in results:
        for group in period.get("Groups", []):
            key = group["Keys"][0]
            if strip_prefix and key.startswith(strip_prefix):
                key = key[len(strip_prefix):] or "(untagged)"
            totals[key] = totals.get(key, 0.0) + _amount(group.get("Metrics", {}))
    return _costliest_first(totals)


def _costliest_first(totals: dict[str, float]) -> dict[str, float]:
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def daily_totals(results: list) -> list[dict]:
    days = []
    for period in results:
        groups = period.get("Groups", [])
        total = sum(_amount(g.get("Metrics", {})) for g in groups) if groups else _amount(period.get("Total", {}))
        days.append({"date": period["TimePeriod"]["Start"], "cost_usd": round(total, 2)})
    return days


def trend(days: list[dict]) -> dict:
    """Mean daily cost of the second half of the period against the first: rising, falling or flat."""
    values = [d["cost_usd"] for d in days]
    half = len(values) // 2
    if half == 0:
        return {"daily": days, "first_half_avg": None, "second_half_avg": None, "change_pct": None,
                "direction": "not enough days"}
    first, second = sum(values[:half]) / half, sum(values[-half:]) / half
    change = None if first == 0 else (second - first) / first * 100
    if change is None:
        direction = "rising" if second > 0 else "flat"
    else:
        direction = "rising" if change > 10 else "falling" if change < -10 else "flat"
    return {"daily": days, "first_half_avg": round(first, 2), "second_half_avg": round(second, 2),
            "change_pct": None if change is None else round(change, 1), "direction": direction}


def _rows(totals: dict, key: str) -> list[dict]:
    grand = sum(totals.values()) or 1.0
    return [{key: name, "cost_usd": round(cost, 2), "share_pct": round(cost / grand * 100, 1)}
            for name, cost in totals.items()]


def _local_window(first: date, last_exclusive: date) -> tuple[str, str]:
    return timeparse.iso(timeparse.day_bounds(first)[0]), timeparse.iso(timeparse.day_bounds(last_exclusive)[0])


# ---- show_costs.py --------------------------------------------------------------------------------

def day_report(day: date, store: Store, explorer: CostExplorer) -> dict:
    results = explorer.cost_and_usage(day, day + timedelta(days=1), {"Type": "DIMENSION", "Key": "SERVICE"})
    services = _rows(totals_by_group(results), "service")
    aws_total = round(sum(s["cost_usd"] for s in services), 2)
    since, until = _local_window(day, day + timedelta(days=1))
    evolutions = [{"id": e["id"], "target": e["target"], "status": e["status"],
                   "cost_usd": round(e.get("cost_usd") or 0, 2)}
                  for e in store.list_evolutions(since=since, until=until)]
    tracked = round(sum(e["cost_usd"] for e in evolutions), 2)
    limit = config.cost_limits().get("daily_usd")
    return {
        "date": day.isoformat(), "services": services, "aws_total_usd": aws_total, "evolutions": evolutions,
        "tracked_usd": tracked, "daily_limit_usd": limit,
        "aws_share_of_limit_pct": round(aws_total / limit * 100, 1) if limit else None,
        "over_limit": bool(limit) and max(aws_total, tracked) > limit,
        "ce_requests": explorer.counts(),
    }


# ---- cost_analysis.py -------------------------------------------------------------------------------

def analysis(days: int, store: Store, explorer: CostExplorer, top: int = 5) -> dict:
    end = utc_today()
    start = end - timedelta(days=days)
    by_service_daily = explorer.cost_and_usage(start, end, {"Type": "DIMENSION", "Key": "SERVICE"})
    tag = config.settings()["aws"]["cost_allocation_tag"]
    by_tag = explorer.cost_and_usage(start, end, {"Type": "TAG", "Key": tag}, granularity="MONTHLY")
    services = totals_by_group(by_service_daily)
    since, until = _local_window(start, end)
    evolutions = store.list_evolutions(since=since, until=until)
    tracked_agents: dict[str, float] = {}
    for task in store.list_tasks(since=since):
        if (task.get("started_at") or "") < until:
            tracked_agents[task["agent"]] = tracked_agents.get(task["agent"], 0.0) + (task.get("cost_usd") or 0)
    by_evolution = sorted(({"id": e["id"], "target": e["target"], "focus": e.get("focus"), "status": e["status"],
                            "cost_usd": round(e.get("cost_usd") or 0, 2)} for e in evolutions),
                          key=lambda e: -e["cost_usd"])
    total = round(sum(services.values()), 2)
    return {
        "period": {"start": start.isoformat(), "end": end.isoformat(), "days": days},
        "total_usd": total,
        "by_service": _rows(services, "service"),
        "by_agent": _rows(totals_by_group(by_tag, f"{tag}$"), "agent"),
        "by_agent_tracked": _rows(_costliest_first(tracked_agents), "agent"),
        "by_evolution": by_evolution,
        "top_drivers": _rows(services, "service")[:top],
        "trend": trend(daily_totals(by_service_daily)),
        "ce_requests": explorer.counts(),
    }


def budget_state() -> dict | None:
    """The budget's actual spend against its limit (health); None when there is no budget."""
    budgets = aws.client("budgets")
    name = config.settings()["aws"]["budget_name"]
    try:
        with aws.aws_errors(f"read the budget {name}"):
            budget = budgets.describe_budget(AccountId=aws.account_id(), BudgetName=name)["Budget"]
    except aws.AWSNotFound:
        return None
    limit = float(budget["BudgetLimit"]["Amount"])
    spend = float(budget.get("CalculatedSpend", {}).get("ActualSpend", {}).get("Amount", 0) or 0)
    return {"name": name, "limit_usd": limit, "actual_usd": spend, "pct": spend / limit * 100 if limit else 0.0}


# ---- tracked costs (DESIGN §5: every task's cost is in the store) ----------------------------------------

TRACKED_GROUPS = (("by_day", "day"), ("by_agent", "agent"), ("by_model", "model"), ("by_phase", "phase"))



def choose_source(source: str, action: str) -> tuple[str, str | None]:
    """(aws or tracked, why tracked was taken): auto falls back to the store when AWS has no credentials here."""
    if source == "tracked":
        return "tracked", "asked for with --source tracked"
    if source == "aws":
        aws.require_credentials(action)
        return "aws", None
    try:
        aws.require_credentials(action)
    except ToolError as failure:
        return "tracked", f"Cost Explorer not configured: {failure.message}"
    return "aws", None


def _with_fallback(source: str, action: str, from_aws, from_store) -> dict:
    """The report from Cost Explorer, or from the store when it is not configured or (auto) cannot be reached;
    the report says which source it used and why."""
    chosen, reason = choose_source(source, action)
    if chosen == "aws":
        try:
            return {**from_aws(), "source": "aws", "source_note": None}
        except ToolError as failure:
            if source != "auto":
                raise
            reason = f"Cost Explorer unreachable: {failure.message}"
    return from_store(reason)


def show_day(day: date, store: Store, source: str, refresh: bool) -> dict:
    """show_costs.py's report (DESIGN §5): Cost Explorer by service, else the tracked costs."""
    return _with_fallback(source, "read costs", lambda: day_report(day, store, CostExplorer(refresh)),
                          lambda reason: tracked_day_report(day, store, reason))


def analyze(days: int, store: Store, source: str, refresh: bool) -> dict:
    """cost_analysis.py's report: Cost Explorer's drivers, else the tracked costs."""
    return _with_fallback(source, "analyse costs", lambda: analysis(days, store, CostExplorer(refresh)),
                          lambda reason: tracked_analysis(days, store, reason))


def tracked_costs(store: Store, first: date, last_exclusive: date) -> dict:
    """The tasks' recorded costs and tokens from first to last_exclusive (local days), grouped by day, agent,
    model and phase (costliest first; days in order)."""
    since, until = _local_window(first, last_exclusive)
    tasks = [t for t in store.list_tasks(since=since) if (t.get("started_at") or "") < until]
    groups: dict[str, dict[str, dict]] = {name: {} for name, _ in TRACKED_GROUPS}
    for task in tasks:
        keys = {"day": (timeparse.from_iso(task["started_at"]).astimezone().date().isoformat()),
                "agent": task.get("agent") or "?", "model": task.get("model") or "(no model)",
                "phase": task.get("phase") or "?"}
        for name, key in TRACKED_GROUPS:
            row = groups[name].setdefault(keys[key], {"cost_usd": 0.0, "tasks": 0, "tokens_in": 0, "tokens_out": 0,
                                                      "tokens_cached": 0})
            row["cost_usd"] += task.get("cost_usd") or 0
            row["tasks"] += 1
            for field in ("tokens_in", "tokens_out", "tokens_cached"):
                row[field] += task.get(field) or 0
    total = sum(t.get("cost_usd") or 0 for t in tasks)
    report = {"total_usd": round(total, 4), "tasks": len(tasks)}
    for name, key in TRACKED_GROUPS:
        ordered = sorted(groups[name].items()) if key == "day" else sorted(groups[name].items(),
                                                                           key=lambda item: -item[1]["cost_usd"])
        report[name] = [{key: value, **row, "cost_usd": round(row["cost_usd"], 4),
                         "share_pct": round(row["cost_usd"] / (total or 1.0) * 100, 1)} for value, row in ordered]
    return report


def tracked_day_report(day: date, store: Store, reason: str) -> dict:
    """show_costs.py without Cost Explorer: the day's tracked costs, against the daily limit."""
    tracked = tracked_costs(store, day, day + timedelta(days=1))
    since, until = _local_window(day, day + timedelta(days=1))
    evolutions = [{"id": e["id"], "target": e["target"], "status": e["status"],
                   "cost_usd": round(e.get("cost_usd") or 0, 4)}
                  for e in store.list_evolutions(since=since, until=until)]
    limit = config.cost_limits().get("daily_usd")
    return {"date": day.isoformat(), "source": "tracked", "source_note": reason, "tracked_usd": tracked["total_usd"],
            "evolutions": evolutions, "daily_limit_usd": limit,
            "over_limit": bool(limit) and tracked["total_usd"] > limit,
            **{name: tracked[name] for name, key in TRACKED_GROUPS if key != "day"}}


def tracked_analysis(days: int, store: Store, reason: str, top: int = 5) -> dict:
    """cost_analysis.py without Cost Explorer: the period's tracked costs by day, agent, model, phase, evolution.
    The store is current, so the period ends with today (Cost Explorer's ends with yesterday); tracked days are
    local ones, so today is the local day, which east of UTC may already be the UTC day's tomorrow."""
    end = timeparse.parse_date("today") + timedelta(days=1)
    start = end - timedelta(days=days)
    tracked = tracked_costs(store, start, end)
    since, until = _local_window(start, end)
    by_evolution = sorted(({"id": e["id"], "target": e["target"], "focus": e.get("focus"), "status": e["status"],
                            "cost_usd": round(e.get("cost_usd") or 0, 4)}
                           for e in store.list_evolutions(since=since, until=until)), key=lambda e: -e["cost_usd"])
    daily = {row["day"]: row["cost_usd"] for row in tracked["by_day"]}
    every_day = [{"date": (start + timedelta(days=n)).isoformat(),
                  "cost_usd": daily.get((start + timedelta(days=n)).isoformat(), 0.0)} for n in range(days)]
    return {"period": {"start": start.isoformat(), "end": end.isoformat(), "days": days}, "source": "tracked",
            "source_note": reason, "total_usd": tracked["total_usd"], "tasks": tracked["tasks"],
            **{name: tracked[name] for name, _ in TRACKED_GROUPS}, "top_drivers": tracked["by_agent"][:top],
            "by_evolution": by_evolution, "trend": trend(every_day)}
