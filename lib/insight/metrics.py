"""The runbook's five key metrics over any time window, judged against config/thresholds.yaml,
and the quality gates of config/gates.yaml on the evolution targets.

Figures come from the store's aggregates (one SQL statement per question) and, for the PR
merge rate, from GitHub's closed `auto-evolution` pull requests:
  success_rate   succeeded / final evolutions (finished in the window), %; an `unchanged`
                 evolution is final but no success: it counts in the denominator only (DESIGN §5)
  cycle_time     (finished_at - started_at) summed / cycles run, hours
  cost_per_cycle cost_usd summed / cycles run, USD
  pr_merge_rate  merged / closed auto-evolution PRs (closed in the window), %
  error_rate     failed / all tasks (started in the window), %
A status is normal, warning (between the normal and the alert threshold), alert, or
no-data; unknown when a source could not be asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from lib import config, timeparse
from lib.adapters import github
from lib.checks import Perf, Result, limit
from lib.errors import ToolError, UsageError
from lib.insight import DEFAULT_WINDOW

KEY_METRICS = config.KEY_METRICS
# CloudWatch names (DESIGN §8) when thresholds.yaml does not give one.
CLOUDWATCH_NAMES = {"success_rate": "EvolutionSuccessRate", "cycle_time": "CycleTime",
                    "cost_per_cycle": "CostPerCycle", "pr_merge_rate": "PRMergeRate", "error_rate": "ErrorRate"}
UNITS = {"success_rate": "%", "cycle_time": "hours", "cost_per_cycle": "USD", "pr_merge_rate": "%", "error_rate": "%"}
STATUSES = ("normal", "warning", "alert", "no-data", "unknown")
CHECK_STATUS = {"normal": "ok", "warning": "warning", "alert": "critical", "no-data": "ok", "unknown": "unknown"}
SPARK = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC, with a label for tables (a local day, '7d', a month)."""

    start: datetime
    end: datetime
    label: str

    def bounds(self) -> tuple[str, str]:
        return timeparse.iso(self.start), timeparse.iso(self.end)


def window_back(text: str = DEFAULT_WINDOW, now: datetime | None = None) -> Window:
    """The window of the last duration (7d, 24h) ending now."""
    end = now or timeparse.utcnow()
    return Window(end - timeparse.parse_duration(text), end, text)


def day_windows(days: int, last_day=None) -> list[Window]:
    """The local calendar days ending with last_day (default today), oldest first."""
    if days < 1:
        raise UsageError(f"--days must be 1 or more, got {days}")
    last_day = last_day or timeparse.parse_date("today")
    windows = []
    for back in range(days - 1, -1, -1):
        day = last_day - timedelta(days=back)
        start, end = timeparse.day_bounds(day)
        windows.append(Window(start, end, day.isoformat()))
    return windows


# ---- thresholds -------------------------------------------------------------------------


def thresholds() -> dict:
    return config.load("thresholds")["metrics"]


def judge(value: float | None, threshold: dict | None) -> str:
    """normal beyond the normal bound, alert beyond the alert bound, warning between (runbook: >85%, <70%)."""
    if value is None:
        return "no-data"
    if not threshold:
        return "unknown"
    if threshold["direction"] == "min":
        return "normal" if value > threshold["normal"] else "alert" if value < threshold["alert"] else "warning"
    return "normal" if value < threshold["normal"] else "alert" if value > threshold["alert"] else "warning"


def describe_bound(threshold: dict, key: str) -> str:
    """'>85%' / '<4 hours' / '>$20': how the runbook writes a normal range or alert threshold."""
    if not threshold or threshold.get(key) is None:
        return ""
    good = ">" if threshold["direction"] == "min" else "<"
    sign = good if key == "normal" else {">": "<", "<": ">"}[good]
    return sign + compact(threshold[key], threshold.get("unit", ""))


def compact(value: float, unit: str) -> str:
    """A threshold as people write it: $10, 85%, 4 hours."""
    return f"${value:g}" if unit == "USD" else f"{value:g}%" if unit == "%" else f"{value:g} {unit}".strip()


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "USD":
        return f"${value:,.2f}"
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "hours":
        return f"{value:.2f} h"
    return f"{value:g} {unit}".strip()


# ---- pull requests from GitHub -----------------------------------------------------------


class PrCounts(NamedTuple):
    """auto-evolution PRs closed in a window, and how many of those were merged."""

    closed: int
    merged: int


class PullRequests:
    """auto-evolution PRs updated since a moment, fetched once; note says why there are none."""

    def __init__(self, since: datetime):

        self.pulls: list[dict] = []
        self.note = ""
        self.available = self.failed = False
        if not github.configured():
            self.note = "GitHub not configured (GITHUB_TOKEN and GITHUB_REPOSITORY)"
            return
        try:
            items = github.Client.from_env().pulls_with_label(
                github.AUTO_LABEL, state="all", since=since.strftime("%Y-%m-%dT%H:%M:%SZ"))
        except ToolError as failure:
            self.note, self.failed = f"GitHub: {failure}", True
            return
        self.available = True
        for item in items:
            self.pulls.append({
                "number": item.get("number"), "title": item.get("title"),
                "created_at": _stamp(item.get("created_at")), "closed_at": _stamp(item.get("closed_at")),
                "merged": bool((item.get("pull_request") or {}).get("merged_at") or item.get("merged_at")),
            })

    def counts(self, window: Window) -> PrCounts:
        """How many PRs were closed in the window, and how many of those were merged."""
        start, end = window.bounds()
        inside = [p["merged"] for p in self.pulls if p["closed_at"] and start <= p["closed_at"] < end]
        return PrCounts(len(inside), sum(inside))

    def opened(self, window: Window) -> int:
        start, end = window.bounds()
        return sum(1 for p in self.pulls if p["created_at"] and start <= p["created_at"] < end)


def _stamp(text: str | None) -> str | None:
    moment = timeparse.from_iso(text)
    return timeparse.iso(moment) if moment else None


# ---- the key metrics ------------------------------------------------------------------------


def _ratio(part: float, whole: float, scale: float = 1.0) -> float | None:
    return round(scale * part / whole, 2) if whole else None


class Figure(NamedTuple):
    """One metric over one window: the value (None without data) and what it rests on."""

    value: float | None
    basis: str


@dataclass(frozen=True)
class Computed:
    """One window's key metrics with the store aggregates (evolution_stats, task_stats rows) behind them."""

    window: Window
    values: dict[str, Figure]
    evolutions: dict
    tasks: dict


def figures(evolutions: dict, tasks: dict, prs: PullRequests | None, window: Window) -> dict[str, Figure]:
    """Each key metric of one window from its aggregates (the PR merge rate from GitHub, when it was asked)."""
    cycles = evolutions["cycles"]
    if prs and prs.available:
        closed, merged = prs.counts(window)
        pr_rate = Figure(_ratio(merged, closed, 100), f"{merged}/{closed} closed PRs merged")
    else:
        pr_rate = Figure(None, (prs.note if prs else "") or "GitHub not asked")
    return {
        "success_rate": Figure(_ratio(evolutions["succeeded"], evolutions["finished"], 100),
                               f"{evolutions['succeeded']}/{evolutions['finished']} evolutions succeeded"
                               + (f", {evolutions['unchanged']} unchanged" if evolutions["unchanged"] else "")),
        "cycle_time": Figure(_ratio(evolutions["seconds"], cycles * 3600),
                             f"{evolutions['seconds'] / 3600:.2f} h over {cycles} cycles"),
        "cost_per_cycle": Figure(_ratio(evolutions["cost_usd"], cycles),
                                 f"${evolutions['cost_usd']:.2f} over {cycles} cycles"),
        "pr_merge_rate": pr_rate,
        "error_rate": Figure(_ratio(tasks["failed"], tasks["tasks"], 100),
                             f"{tasks['failed']}/{tasks['tasks']} tasks failed"),
    }


def compute(store, windows: list[Window], prs: PullRequests | None, **limits) -> list[Computed]:
    """Every window's metrics from two store aggregates over all the windows.

    limits go to evolution_stats (cycle_seconds_limit, cycle_cost_limit) for the SLA report.
    """
    bounds = [w.bounds() for w in windows]
    rows = zip(windows, store.evolution_stats(bounds, **limits), store.task_stats(bounds), strict=True)
    return [Computed(window, figures(evolutions, tasks, prs, window), evolutions, tasks)
            for window, evolutions, tasks in rows]


def pull_requests(since: datetime, with_github: bool) -> PullRequests | None:
    return PullRequests(since) if with_github else None


def describe(name: str, figure: Figure, limits: dict, unavailable: bool = False) -> dict:
    """One metric as every command shows it (table row and JSON object)."""
    threshold = limits.get(name) or {}
    value = figure.value
    return {
        "name": name,
        "label": threshold.get("label", name.replace("_", " ")),
        "metric": threshold.get("metric", CLOUDWATCH_NAMES[name]),
        "unit": threshold.get("unit", UNITS[name]),
        "value": value,
        "status": "unknown" if unavailable else judge(value, threshold),
        "normal": threshold.get("normal"),
        "alert": threshold.get("alert"),
        "direction": threshold.get("direction"),
        "action": threshold.get("action", ""),
        "basis": figure.basis,
    }


def described(values: dict[str, Figure], limits: dict, prs: PullRequests | None) -> list[dict]:
    """The five metrics in order; the merge rate is unknown when GitHub was asked and failed."""
    failed = bool(prs and prs.failed)
    return [describe(name, values[name], limits, unavailable=failed and name == "pr_merge_rate")
            for name in KEY_METRICS]


def key_metrics(store, window: Window, with_github: bool = True) -> dict:
    """The five metrics over one window: {window, metrics: [...], note}."""
    prs = pull_requests(window.start, with_github)
    (computed,) = compute(store, [window], prs)
    return {"window": window_json(window), "metrics": described(computed.values, thresholds(), prs),
            "note": prs.note if prs else ""}


def window_json(window: Window) -> dict:
    start, end = window.bounds()
    return {"label": window.label, "start": start, "end": end}


# ---- trend ----------------------------------------------------------------------------------


def trend_direction(values: list[float | None], direction: str | None) -> str:
    """up/down/flat by the least-squares slope over the days with data, with better/worse."""
    points = [(x, y) for x, y in enumerate(values) if y is not None]
    if len(points) < 2:
        return "flat"
    mean_y = sum(y for _, y in points) / len(points)
    change = _slope(points) * (points[-1][0] - points[0][0])
    if abs(change) <= 0.05 * max(abs(mean_y), 1e-9):  # less than 5% over the window
        return "flat"
    rising = change > 0
    better = rising if direction == "min" else not rising
    return f"{'up' if rising else 'down'} ({'better' if better else 'worse'})"


def _slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of y over x."""
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def sparkline(values: list[float | None]) -> str:
    """A compact unicode sparkline; a blank for days without data."""
    known = [v for v in values if v is not None]
    low, high = (min(known), max(known)) if known else (0, 0)
    scale = (len(SPARK) - 1) / (high - low) if high > low else 0
    return "".join(" " if v is None else SPARK[round((v - low) * scale) if scale else 3] for v in values)


def trend(store, days: int, with_github: bool = True) -> dict:
    """A row per day (the five values and their status), and per metric the window value, trend and status."""
    windows = day_windows(days)
    whole = Window(windows[0].start, windows[-1].end, f"{days}d")
    prs = pull_requests(whole.start, with_github)
    computed = compute(store, windows, prs)
    # the days tile the window, so its sums are the days' sums (no second pass over the rows)
    overall = figures(_sum_rows(c.evolutions for c in computed), _sum_rows(c.tasks for c in computed), prs, whole)
    limits = thresholds()
    rows = [_day(day, limits) for day in computed]
    metrics = described(overall, limits, prs)
    for entry in metrics:
        series = [row[entry["name"]] for row in rows]
        entry.update(trend=trend_direction(series, entry["direction"]), daily=series)
    return {"window": window_json(whole), "days": rows, "metrics": metrics, "note": prs.note if prs else ""}


def _day(day: Computed, limits: dict) -> dict:
    """One day of the trend: the five values and each one's status."""
    start, end = day.window.bounds()
    values = {name: day.values[name].value for name in KEY_METRICS}
    return {"day": day.window.label, "start": start, "end": end, **values,
            "status": {name: judge(value, limits.get(name)) for name, value in values.items()}}


def _sum_rows(rows) -> dict:
    """Field-wise sums of aggregate rows (every field but the window index is additive)."""
    total: dict = {}
    for row in rows:
        for key, value in row.items():
            if key != "window":
                total[key] = total.get(key, 0) + value
    return total


# ---- table shapes for show_metrics / check_metrics ---------------------------------------------


def _cell(value: float | None, unit: str, status: str) -> str:
    marks = {"warning": " warn", "alert": " ALERT"}
    return format_value(value, unit) + marks.get(status, "")


def day_rows(document: dict) -> tuple[list[dict], list[tuple[str, str]]]:
    """A row per day, a column per metric (warn / ALERT after a value past a threshold)."""
    units = {m["name"]: m["unit"] for m in document["metrics"]}
    rows = [{"day": row["day"], **{name: _cell(row[name], units[name], row["status"][name]) for name in KEY_METRICS}}
            for row in document["days"]]
    return rows, [("day", "DAY"), *((m["name"], m["label"].upper()) for m in document["metrics"])]


def metric_rows(document: dict, spark: bool = False) -> tuple[list[dict], list[tuple[str, str]]]:
    """A row per metric: value over the window, thresholds, trend, status (and a sparkline on a terminal)."""
    rows = []
    for m in document["metrics"]:
        rows.append({**m, "shown": format_value(m["value"], m["unit"]), "status": m["status"].upper(),
                     "normal_range": describe_bound(m, "normal"), "alert_at": describe_bound(m, "alert"),
                     "spark": sparkline(m.get("daily", []))})
    columns = [("label", "METRIC"), ("shown", document["window"]["label"].upper()), ("normal_range", "NORMAL"),
               ("alert_at", "ALERT")]
    if "daily" in document["metrics"][0]:
        columns.append(("trend", "TREND"))
    columns.append(("status", "STATUS"))
    if spark:
        columns.append(("spark", "DAILY"))
    if "daily" not in document["metrics"][0]:
        columns.append(("basis", "BASIS"))
    return rows, columns


# ---- check_metrics / health: the key metrics as check results ------------------------------------


def key_metric_results(store, window: Window, with_github: bool = True) -> list:
    """Each key metric against its thresholds as a check result (alert: critical, warning: warning)."""
    import time


    started = time.monotonic()
    document = key_metrics(store, window, with_github)
    elapsed = int((time.monotonic() - started) * 1000)
    results = []
    for m in document["metrics"]:
        bounds = ", ".join(filter(None, [f"normal {describe_bound(m, 'normal')}" if m["direction"] else "",
                                         f"alert {describe_bound(m, 'alert')}" if m["direction"] else ""]))
        shown = "no data" if m["value"] is None else format_value(m["value"], m["unit"])
        summary = f"{shown} over {window.label}" + (f" ({bounds})" if bounds else "")
        summary += f"; {m['basis']}"
        if m["status"] in ("warning", "alert") and m["action"]:
            summary += f"; {m['action']}"
        figure = Perf(m["name"], m["value"], m["unit"], limit(m["normal"], m["direction"]),
                      limit(m["alert"], m["direction"]))
        results.append(Result(m["name"], "key metrics", CHECK_STATUS[m["status"]], summary, elapsed,
                              {"value": m["value"], "unit": m["unit"], "state": m["status"], "metric": m["metric"]},
                              (figure,)))
    return results
