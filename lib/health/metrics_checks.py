"""health_check.py --full: each key metric against its thresholds, and the quality gates.

The five metric checks share one computation per run (the first to ask does it, under a
lock); a metric past its alert threshold is critical, between normal and alert a warning.
Failing gates, or no target to measure, are a warning here: they block PRs, not the
system (check_metrics.py makes a failing gate critical and a missing target unknown).
"""

from __future__ import annotations

import threading

from lib.health import check
from lib.insight import metrics
from lib.quality import gates
from lib.store import open_store

AREA = "metrics"
_lock = threading.Lock()


def _key_metrics(context: dict) -> dict:
    """{name: Result} of the key metrics over the default window, computed once per context."""
    with _lock:
        if "key_metrics" not in context:

            results = metrics.key_metric_results(open_store(), metrics.window_back(metrics.DEFAULT_WINDOW))
            context["key_metrics"] = {result.name: result for result in results}
        return context["key_metrics"]


def _register(name: str) -> None:
    @check(f"metric_{name}", AREA, groups=("full",), timeout=30)
    def key_metric(context: dict) -> tuple[str, str]:
        result = _key_metrics(context)[name]
        return result.status, result.summary

    key_metric.__doc__ = f"The {name.replace('_', ' ')} against config/thresholds.yaml."


for _name in ("success_rate", "cycle_time", "cost_per_cycle", "pr_merge_rate", "error_rate"):
    _register(_name)


@check("quality_gates", AREA, groups=("full",), timeout=180)
def quality_gates(context: dict) -> tuple[str, str]:
    """The gates of config/gates.yaml on the default evolution targets."""

    found, missing = gates.targets(open_store())
    results = gates.gate_results(found, missing, verbose=False)
    failed = [f"{r.name} on {r.area.removeprefix('gates ')}: {r.summary}" for r in results if r.status == "critical"]
    if failed:
        return "warning", "; ".join(failed)
    if not found:  # nothing to measure: worth a look, not a failure of the system
        return "warning", results[0].summary
    return "ok", f"{len(results)} gates passed on {', '.join(str(p) for p in found)}"
