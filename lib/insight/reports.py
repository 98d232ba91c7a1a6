"""Reports over the evolution history: the monthly SLA, the weekly performance analysis and the
monthly Markdown report with its PNG charts.

SLA: each key metric's objective is its normal bound in config/thresholds.yaml, met when the
month's value reaches it (inclusive). The error budget is what the objective allows: evolutions
that did not succeed (unchanged ones included, counted apart), failed tasks or unmerged PRs for
the rates (e.g. 15% of finished evolutions for >85%), hours and dollars for cycle time and cost
(4 h and $10 per cycle run).
"""

from __future__ import annotations

import importlib.util
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from lib import config, humanize, paths, timeparse
from lib.fsutil import atomic_write
from lib.insight import history, metrics
from lib.insight.metrics import Window
from lib.quality import FOCUS_METRICS
from lib.store import FINAL

# ---- SLA ---------------------------------------------------------------------------------------


def month_window(text: str | None) -> Window:
    """--month YYYY-MM as a window; without it, the previous (complete) local month."""
    if not text:
        first = timeparse.parse_date("today").replace(day=1)
        text = (first - timedelta(days=1)).strftime("%Y-%m")
    start, end = timeparse.parse_month(text)
    return Window(start, end, text)


def _rate_row(target: float, direction: str, good: int, total: int, unit: str) -> dict:
    """An event-based objective: achieved %, bad events as the breach count, the budget of bad events."""
    bad = total - good
    achieved = round(100.0 * good / total, 2) if total else None
    if direction == "max":  # error rate: the value is the bad share, the budget is target% of events
        achieved = round(100.0 * bad / total, 2) if total else None
        allowed = target / 100 * total
    else:
        allowed = (100 - target) / 100 * total
    return _row(target, achieved, direction, bad, "count", allowed, bad, unit) | {"counted": unit}


def _row(target, achieved, direction, breach, breach_unit, allowed, used, budget_unit) -> dict:
    if achieved is None:
        met = None
    else:
        met = achieved >= target if direction == "min" else achieved <= target
    left = allowed - used
    if allowed:
        left_pct = round(100.0 * left / allowed, 2)
    else:
        left_pct = None if achieved is None or used else 100.0
    return {"target": target, "direction": direction, "achieved": achieved, "met": met,
            "breach": round(breach, 2), "breach_unit": breach_unit, "budget_total": round(allowed, 2),
            "budget_used": round(used, 2), "budget_left": round(left, 2), "budget_left_pct": left_pct,
            "budget_unit": budget_unit}


def _sla_success(entry: dict, c: metrics.Computed, prs: metrics.PullRequests) -> dict:
    """Unchanged evolutions did not succeed: they are breaches, and counted apart (DESIGN §5)."""
    evo = c.evolutions
    return _rate_row(entry["normal"], entry["direction"], evo["succeeded"], evo["finished"], "evolutions") | {
        "unchanged": evo["unchanged"]}


def _sla_errors(entry: dict, c: metrics.Computed, prs: metrics.PullRequests) -> dict:
    tasks = c.tasks
    return _rate_row(entry["normal"], entry["direction"], tasks["tasks"] - tasks["failed"], tasks["tasks"], "tasks")


def _sla_merges(entry: dict, c: metrics.Computed, prs: metrics.PullRequests) -> dict:
    closed, merged = prs.counts(c.window) if prs.available else (0, 0)
    return _rate_row(entry["normal"], entry["direction"], merged, closed, "PRs") | {
        "note": "" if prs.available else prs.note}


def _sla_cycle_time(entry: dict, c: metrics.Computed, prs: metrics.PullRequests) -> dict:
    """Breach: minutes past target x cycles run, summed over evolutions; budget: hours."""
    evo = c.evolutions
    return _row(entry["normal"], c.values["cycle_time"].value, entry["direction"], evo["excess_seconds"] / 60,
                "minutes", entry["normal"] * evo["cycles"], evo["seconds"] / 3600, "hours") | {
        "breach_evolutions": evo["over_seconds"]}


def _sla_cost(entry: dict, c: metrics.Computed, prs: metrics.PullRequests) -> dict:
    """Breach: evolutions that cost more than target per cycle; budget: dollars."""
    evo = c.evolutions
    return _row(entry["normal"], c.values["cost_per_cycle"].value, entry["direction"], evo["over_cost"], "count",
                entry["normal"] * evo["cycles"], evo["cost_usd"], "USD") | {"counted": "evolutions"}


SLA_ROWS = {"success_rate": _sla_success, "cycle_time": _sla_cycle_time, "cost_per_cycle": _sla_cost,
            "pr_merge_rate": _sla_merges, "error_rate": _sla_errors}


def sla(store, window: Window, prs: metrics.PullRequests | None = None) -> dict:
    """Per key metric: target, achieved, breach (minutes or count) and error budget left, over the window."""
    limits = metrics.thresholds()
    hours = limits.get("cycle_time", {}).get("normal")
    prs = prs or metrics.PullRequests(window.start)
    (computed,) = metrics.compute(store, [window], prs,
                                  cycle_seconds_limit=hours * 3600 if hours is not None else None,
                                  cycle_cost_limit=limits.get("cost_per_cycle", {}).get("normal"))
    rows = [{"name": name, **SLA_ROWS[name](limits[name], computed, prs), "label": limits[name].get("label", name),
             "unit": limits[name].get("unit", "")} for name in metrics.KEY_METRICS if name in limits]
    return {"month": window.label, "window": metrics.window_json(window), "metrics": rows}


SLA_COLUMNS = [("label", "Metric"), ("target_shown", "Target"), ("achieved_shown", "Achieved"),
               ("verdict", "SLA"), ("breach_shown", "Breach"), ("budget_shown", "Error budget left")]


def sla_rows(document: dict) -> list[dict]:
    """SLA rows with display columns added."""
    rows = []
    for row in document["metrics"]:
        sign = ">=" if row["direction"] == "min" else "<="
        verdict = {True: "met", False: "MISSED", None: "no data"}[row["met"]]
        budget = "—" if row["budget_left_pct"] is None else (
            f"{row['budget_left_pct']:.1f}% ({_amount(row['budget_left'], row['budget_unit'])} "
            f"of {_amount(row['budget_total'], row['budget_unit'])})")
        rows.append({**row, "target_shown": sign + metrics.compact(row["target"], row["unit"]),
                     "achieved_shown": metrics.format_value(row["achieved"], row["unit"]), "verdict": verdict,
                     "breach_shown": f"{row['breach']:g} {row.get('counted', row['breach_unit'])}"
                     + (f" ({row['unchanged']} unchanged)" if row.get("unchanged") else ""),
                     "budget_shown": budget})
    return rows


def _amount(value: float, unit: str) -> str:
    if unit == "USD":
        return f"${value:,.2f}"
    if unit == "hours":
        return f"{value:,.1f} h"
    return f"{value:g} {unit}"


# ---- performance -----------------------------------------------------------------------------------


def _phase_order(phase: str | None) -> tuple:
    return (config.PHASES.index(phase) if phase in config.PHASES else len(config.PHASES), phase or "")


def _change(now: float | None, before: float | None) -> float | None:
    """Percent change against the previous period (None without both)."""
    if now is None or before is None or before == 0:
        return None
    return round(100.0 * (now - before) / before, 1)


def _by_period(rows: list[dict], keys: tuple) -> tuple[list[dict], dict[tuple, dict]]:
    """The rows of window 0 (this period), and those of window 1 (the one before) by their group fields."""
    now = [row for row in rows if row["window"] == 0]
    before = {tuple(row[k] for k in keys): row for row in rows if row["window"] == 1}
    return now, before


def _agent_rows(rows: list[dict]) -> list[dict]:
    now, before = _by_period(rows, ("phase", "agent"))
    result = []
    for row in sorted(now, key=lambda r: (_phase_order(r["phase"]), r["agent"] or "")):
        old = before.get((row["phase"], row["agent"]), {})
        result.append({"phase": row["phase"], "agent": row["agent"], "tasks": row["tasks"], "failed": row["failed"],
                       "p50_s": row["p50"], "p95_s": row["p95"], "previous_p50_s": old.get("p50"),
                       "previous_p95_s": old.get("p95"), "p50_change_pct": _change(row["p50"], old.get("p50")),
                       "p95_change_pct": _change(row["p95"], old.get("p95"))})
    return result


def _phase_rows(rows: list[dict]) -> list[dict]:
    now, before = _by_period(rows, ("phase",))
    total = sum(r["seconds"] for r in now)
    return [{"phase": row["phase"], "tasks": row["tasks"], "seconds": row["seconds"],
             "share_pct": round(100.0 * row["seconds"] / total, 1) if total else None,
             "p50_s": row["p50"], "p95_s": row["p95"],
             "seconds_change_pct": _change(row["seconds"], before.get((row["phase"],), {}).get("seconds"))}
            for row in sorted(now, key=lambda r: _phase_order(r["phase"]))]


def performance(store, days: int = 7, now: datetime | None = None, slowest: int = 5) -> dict:
    """Phase durations p50/p95 by agent, the bottleneck phase, the slowest evolutions, against the period before."""
    end = now or timeparse.utcnow()
    span = timedelta(days=days)
    this, previous = Window(end - span, end, f"{days}d"), Window(end - 2 * span, end - span, f"previous {days}d")
    bounds = [this.bounds(), previous.bounds()]
    phases = _phase_rows(store.task_stats(bounds, group_by=("phase",), percentiles=(50, 95)))
    bottleneck = max(phases, key=lambda r: (r["seconds"], r["p95_s"] or 0), default=None)
    cycle_now, cycle_before = (e["seconds"] / e["cycles"] / 3600 if e["cycles"] else None
                               for e in store.evolution_stats(bounds))
    return {
        "window": metrics.window_json(this), "previous": metrics.window_json(previous),
        "agents": _agent_rows(store.task_stats(bounds, group_by=("phase", "agent"), percentiles=(50, 95))),
        "phases": phases,
        "bottleneck": bottleneck and {k: bottleneck[k] for k in ("phase", "share_pct", "p95_s")},
        "cycle_time_hours": _round(cycle_now), "previous_cycle_time_hours": _round(cycle_before),
        "cycle_time_change_pct": _change(cycle_now, cycle_before),
        "slowest": [{"id": e["id"], "target": e["target"], "status": e["status"], "cycles": e.get("cycles"),
                     "hours": round(e["seconds"] / 3600, 2), "cost_usd": e.get("cost_usd"),
                     "started_at": e["started_at"]} for e in store.longest_evolutions(*this.bounds(), limit=slowest)],
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def change_text(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f}%"


# ---- monthly report ----------------------------------------------------------------------------------


def default_report_path(window: Window) -> Path:
    return paths.history_dir() / "reports" / f"monthly-report-{window.label}.md"


@dataclass(frozen=True)
class _Monthly:
    """What the report's sections read, gathered once by monthly()."""

    window: Window
    key: list[dict]  # the key metrics as metrics.describe gives them
    whole: metrics.Computed  # the month
    daily: list[metrics.Computed]  # each local day of it
    sla: dict
    prs: metrics.PullRequests
    charts: dict[str, Path]
    by_target: list[dict]  # evolution_stats grouped by target
    by_agent: list[dict]  # task_stats grouped by phase and agent
    failed: list[dict]  # the failed and killed evolutions
    quality: list[dict]  # quality_change of the month's evolutions

    def value(self, name: str) -> str:
        """A key metric over the month as the tables show it."""
        return metrics.format_value(self.whole.values[name].value, metrics.UNITS[name])


def monthly(store, window: Window, output: Path | None = None) -> dict:
    """Write the Markdown report and its charts (PNG files beside it); returns {report, charts, ...}."""
    output = Path(output or default_report_path(window))
    prs = metrics.PullRequests(window.start)
    *daily, whole = metrics.compute(store, [*_month_days(window), window], prs)
    limits = metrics.thresholds()
    key = metrics.described(whole.values, limits, prs)
    agreement = sla(store, window, prs)
    charts = {}
    if charts_available():
        charts = {"metrics": output.with_name(f"{output.stem}-metrics.png"),
                  "cost": output.with_name(f"{output.stem}-cost.png")}
        _chart_metrics(daily, limits, charts["metrics"], window.label)
        _chart_cost(daily, charts["cost"], window.label)
    bounds = window.bounds()
    started = store.list_evolutions(since=bounds[0], until=bounds[1])
    report = _Monthly(
        window=window, key=key, whole=whole, daily=daily, sla=agreement, prs=prs, charts=charts,
        by_target=store.evolution_stats([bounds], group_by="target"),
        by_agent=store.task_stats([bounds], group_by=("phase", "agent")),
        failed=[e for e in started if e["status"] in ("failed", "killed")],
        quality=quality_change(started),
    )
    atomic_write(output, render_markdown(report))
    return {"report": str(output), "charts": {k: str(v) for k, v in charts.items()}, "month": window.label,
            "metrics": key, "sla": agreement["metrics"], "quality": report.quality,
            "charts_note": None if charts else CHARTS_MISSING}


# The metrics the quality change shows, in this order: these four always, maintainability for its focus.
QUALITY_METRICS = ("docstring", "complexity", "maintainability", "lint", "security")
_ALWAYS_SHOWN = ("docstring", "complexity", "lint", "security")


def quality_change(records: list[dict]) -> list[dict]:
    """Per target, how the month's evolutions moved its quality: the first evolution's metrics_before
    against the last succeeded evolution's metrics_after (None without one), for docstring, complexity,
    lint, security and the metrics of the focuses worked on."""
    by_target: dict[str, list[dict]] = {}
    for record in sorted(records, key=lambda r: (r["started_at"], r["id"])):
        by_target.setdefault(record["target"], []).append(record)
    rows = []
    for target, runs in sorted(by_target.items()):
        first = next((r for r in runs if r.get("metrics_before")), None)
        last = next((r for r in reversed(runs) if r["status"] == "succeeded" and r.get("metrics_after")), None)
        focuses = list(dict.fromkeys(r["focus"] for r in runs if r.get("focus")))
        shown = set(_ALWAYS_SHOWN).union(*(FOCUS_METRICS.get(focus, ()) for focus in focuses))
        before, after = (first or {}).get("metrics_before") or {}, (last or {}).get("metrics_after") or {}
        rows.append({
            "target": target, "focuses": focuses, "evolutions": len(runs),
            **{status: sum(r["status"] == status for r in runs) for status in ("succeeded", "unchanged")},
            "first_evolution": first and first["id"], "last_succeeded": last and last["id"],
            "metrics": {name: {"before": before.get(name), "after": after.get(name)}
                        for name in QUALITY_METRICS if name in shown},
        })
    return rows


def _month_days(window: Window) -> list[Window]:
    days, day = [], timeparse.from_iso(window.bounds()[0]).astimezone().date()
    while True:
        start, end = timeparse.day_bounds(day)
        if start >= window.end:
            return days
        days.append(Window(start, end, day.isoformat()))
        day += timedelta(days=1)


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def render_markdown(c: _Monthly) -> str:
    """The report: key metrics, costs, evolutions, quality change, pull requests, failures, SLA, charts."""
    window = c.window
    first = timeparse.from_iso(window.bounds()[0]).astimezone()
    last = timeparse.from_iso(window.bounds()[1]).astimezone() - timedelta(seconds=1)
    out = [f"# T-Developer monthly report: {first:%B %Y}", "",
           f"Period {first:%Y-%m-%d} to {last:%Y-%m-%d} ({first:%Z}); generated {timeparse.local(timeparse.iso())}.",
           ""]
    for section in (_key_section, _cost_section, _evolution_section, _quality_section, _pull_section,
                    _failure_section, _sla_section):
        out += section(c)
        out.append("")
    return "\n".join(out)


def _key_section(c: _Monthly) -> list[str]:
    rows = [[m["label"], metrics.format_value(m["value"], m["unit"]), metrics.describe_bound(m, "normal"),
             metrics.describe_bound(m, "alert"), m["status"], m["basis"]] for m in c.key]
    return ["## Key metrics", "", *_table(["Metric", "Value", "Normal", "Alert", "Status", "Basis"], rows), "",
            _chart(c, "metrics", "Daily key metrics")]


def _cost_section(c: _Monthly) -> list[str]:
    evo, tasks = c.whole.evolutions, c.whole.tasks
    busiest = max(c.daily, key=lambda day: day.evolutions["cost_usd"], default=None)
    out = ["## Costs", "",
           f"- Total: ${evo['cost_usd']:,.2f} over {evo['finished']} evolutions and {evo['cycles']} cycles "
           f"({c.value('cost_per_cycle')} per cycle)",
           f"- Daily average: ${evo['cost_usd'] / max(len(c.daily), 1):,.2f}; busiest day: "
           + (f"{busiest.window.label} (${busiest.evolutions['cost_usd']:,.2f})"
              if busiest and busiest.evolutions["cost_usd"] else "none"),
           f"- Agent calls: {tasks['tasks']} tasks, ${tasks['cost_usd']:,.2f}", ""]
    if c.by_agent:
        out += _table(["Phase", "Agent", "Tasks", "Failed", "Cost"],
                      [[r["phase"], r["agent"], r["tasks"], r["failed"], f"${r['cost_usd']:,.2f}"]
                       for r in sorted(c.by_agent, key=lambda r: -r["cost_usd"])])
        out.append("")
    return [*out, _chart(c, "cost", "Daily cost")]


def _evolution_section(c: _Monthly) -> list[str]:
    evo = c.whole.evolutions
    statuses = ", ".join(f"{evo[s]} {s}" for s in FINAL)
    out = ["## Evolutions", "", f"- Finished: {evo['finished']} ({statuses})",
           f"- Success rate: {c.value('success_rate')} (unchanged ones count as not succeeded); "
           f"cycle time {c.value('cycle_time')}"]
    if c.by_target:
        out += ["", *_table(["Target", "Finished", "Succeeded", "Unchanged", "Failed", "Cost"],
                            [[r["target"], r["finished"], r["succeeded"], r["unchanged"], r["failed"],
                              f"${r['cost_usd']:,.2f}"] for r in c.by_target])]
    return out


def _quality_section(c: _Monthly) -> list[str]:
    out = ["## Quality change", ""]
    if not c.quality:
        return [*out, "No evolution started this month."]
    shown = [name for name in QUALITY_METRICS if any(name in row["metrics"] for row in c.quality)]

    def cell(row: dict, name: str) -> str:
        values = row["metrics"].get(name)
        if not values or values["before"] is None and values["after"] is None:
            return "—"
        return f"{history.metric_text(name, values['before'])} -> {history.metric_text(name, values['after'])}"

    return [*out, "Per target: measured before the month's first evolution and after its last succeeded one "
                  "(that evolution's branch; its PR may not be merged yet). Without a succeeded evolution "
                  "there is no after (—).", "",
            *_table(["Target", "Focus", "Evolutions", "Succeeded", "Unchanged", *(n.capitalize() for n in shown)],
                    [[row["target"], ", ".join(row["focuses"]), row["evolutions"], row["succeeded"],
                      row["unchanged"], *(cell(row, name) for name in shown)] for row in c.quality])]


def _pull_section(c: _Monthly) -> list[str]:
    prs, window = c.prs, c.window
    if not prs.available:
        return ["## Pull requests", "", f"Not available: {prs.note}."]
    closed, merged = prs.counts(window)
    return ["## Pull requests", "", f"- Opened: {prs.opened(window)}", f"- Merged: {merged}",
            f"- Closed without merging: {closed - merged}", f"- Merge rate: {c.value('pr_merge_rate')}"]


def _failure_section(c: _Monthly) -> list[str]:
    tasks = c.whole.tasks
    out = ["## Failures", "", f"- Failed tasks: {tasks['failed']} of {tasks['tasks']} ({c.value('error_rate')})", ""]
    failing = sorted((r for r in c.by_agent if r["failed"]), key=lambda r: -r["failed"])
    if failing:
        out += [*_table(["Phase", "Agent", "Failed tasks"], [[r["phase"], r["agent"], r["failed"]] for r in failing]),
                ""]
    if not c.failed:
        return [*out, "No evolution failed or was killed."]
    shown = c.failed[:20]
    out += _table(["Evolution", "Status", "Target", "Error"],
                  [[e["id"], e["status"], e["target"], (e.get("error") or "")[:120]] for e in shown])
    if len(c.failed) > len(shown):
        out += ["", f"…and {len(c.failed) - len(shown)} more: python scripts/show_evolution_history.py"]
    return out


def _sla_section(c: _Monthly) -> list[str]:
    rows = [[r[key] for key, _ in SLA_COLUMNS] for r in sla_rows(c.sla)]
    return ["## SLA", "", *_table([header for _, header in SLA_COLUMNS], rows)]


# ---- charts (matplotlib, Agg, imported only here; optional) ---------------------------------------

#: matplotlib (with numpy, over half of a full install) is not in requirements.txt: the charts are extra.
CHARTS_MISSING = "no charts: matplotlib is not installed (pip install matplotlib, then generate the report again)"


def charts_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def _chart(c: _Monthly, name: str, title: str) -> str:
    """The chart's image link, or where it would be, how to get it."""
    return f"![{title}]({c.charts[name].name})" if name in c.charts else f"_{title}: {CHARTS_MISSING}._"



def _figure(rows: int):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(rows, 1, figsize=(10, 3.2 * rows), sharex=True, squeeze=False)
    return pyplot, figure, [a[0] for a in axes]


def _save(pyplot, figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    pyplot.close(figure)
    atomic_write(path, buffer.getvalue())


def _day_numbers(daily: list[metrics.Computed]) -> list[int]:
    return [int(day.window.label[-2:]) for day in daily]


def _chart_metrics(daily: list[metrics.Computed], limits: dict, path: Path, title: str) -> None:
    pyplot, figure, (rates, hours) = _figure(2)
    x = _day_numbers(daily)
    for name, style in (("success_rate", "o-"), ("pr_merge_rate", "s-"), ("error_rate", "^-")):
        values = [day.values[name].value for day in daily]
        rates.plot(x, [float("nan") if v is None else v for v in values], style, label=limits.get(name, {}).get(
            "label", name), markersize=3)
    rates.set_ylabel("%")
    rates.set_ylim(0, 100)
    rates.legend(loc="best", fontsize="small")
    rates.set_xlim(0.5, len(daily) + 0.5)
    rates.set_title(f"Daily key metrics, {title}")
    cycle = [day.values["cycle_time"].value for day in daily]
    hours.plot(x, [float("nan") if v is None else v for v in cycle], "o-", color="tab:purple", markersize=3,
               label="Cycle time")
    for level, color in (("normal", "tab:green"), ("alert", "tab:red")):
        bound = limits.get("cycle_time", {}).get(level)
        if bound is not None:
            hours.axhline(bound, color=color, linestyle="--", linewidth=1, label=f"{level} {bound:g} h")
    hours.set_ylabel("hours per cycle")
    hours.set_xlabel("day of month")
    hours.legend(loc="best", fontsize="small")
    _save(pyplot, figure, path)


def _chart_cost(daily: list[metrics.Computed], path: Path, title: str) -> None:
    pyplot, figure, (axis,) = _figure(1)
    axis.bar(_day_numbers(daily), [day.evolutions["cost_usd"] for day in daily], color="tab:blue")
    axis.set_title(f"Daily evolution cost (USD), {title}")
    axis.set_xlim(0.5, len(daily) + 0.5)
    axis.set_ylabel("USD")
    axis.set_xlabel("day of month")
    _save(pyplot, figure, path)


# ---- performance tables for analyze_performance.py ------------------------------------------------------


def performance_headline(document: dict) -> str:
    bottleneck = document["bottleneck"]
    where = (f"bottleneck phase: {bottleneck['phase']} ({bottleneck['share_pct']:g}% of agent time, "
             f"p95 {humanize.decimal_duration(bottleneck['p95_s'])})" if bottleneck
             else "no agent tasks in this period")
    cycle = metrics.format_value(document["cycle_time_hours"], "hours")
    return (f"{document['window']['label']} to {timeparse.local(document['window']['end'])}: {where}; "
            f"cycle time {cycle} ({change_text(document['cycle_time_change_pct'])} against the previous period)")


def performance_tables(document: dict) -> dict[str, tuple[list[dict], list[tuple[str, str]]]]:
    """Title -> (rows, columns) for the phase, agent and slowest-evolution tables."""
    phases = [{**r, "time": humanize.decimal_duration(r["seconds"]), "share": f"{r['share_pct']:g}%",
               "p50": humanize.decimal_duration(r["p50_s"]), "p95": humanize.decimal_duration(r["p95_s"]),
               "change": change_text(r["seconds_change_pct"])} for r in document["phases"]]
    agents = [{**r, "p50": humanize.decimal_duration(r["p50_s"]), "p95": humanize.decimal_duration(r["p95_s"]),
               "p50_change": change_text(r["p50_change_pct"]), "p95_change": change_text(r["p95_change_pct"])}
              for r in document["agents"]]
    slowest = [{**e, "duration": metrics.format_value(e["hours"], "hours"), "started": timeparse.local(e["started_at"])}
               for e in document["slowest"]]
    return {
        "Phases (time spent in agent calls)": (phases, [
            ("phase", "PHASE"), ("tasks", "TASKS"), ("time", "TIME"), ("share", "SHARE"), ("p50", "P50"),
            ("p95", "P95"), ("change", "TIME VS PREVIOUS")]),
        "Phase durations by agent": (agents, [
            ("phase", "PHASE"), ("agent", "AGENT"), ("tasks", "TASKS"), ("failed", "FAILED"), ("p50", "P50"),
            ("p95", "P95"), ("p50_change", "P50 VS PREVIOUS"), ("p95_change", "P95 VS PREVIOUS")]),
        "Slowest evolutions": (slowest, [
            ("id", "ID"), ("target", "TARGET"), ("status", "STATUS"), ("cycles", "CYCLES"),
            ("duration", "DURATION"), ("started", "STARTED")]),
    }
