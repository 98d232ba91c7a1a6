"""Export the key metrics: Prometheus text or OpenMetrics (prometheus_client, a custom collector),
JSON, or CloudWatch put_metric_data in the TDeveloper namespace.

Prometheus names follow its conventions (base units, ratios 0-1); CloudWatch keeps the
runbook's units (%, hours, USD). A file is written the way node_exporter's textfile
collector wants it: a temporary file in the same folder renamed over the target, mode
0644, with a last-success timestamp that alerts can watch for staleness.
"""

from __future__ import annotations

import time
from pathlib import Path

from lib import config
from lib.adapters import aws
from lib.fsutil import atomic_write
from lib.insight import metrics
from lib.quality import gates

PREFIX = "tdeveloper"
# Prometheus name, factor from the runbook unit to the base unit, help.
PROMETHEUS = {
    "success_rate": ("evolution_success_ratio", 0.01, "Succeeded / final evolutions, unchanged ones included (0-1)"),
    "cycle_time": ("cycle_time_seconds", 3600.0, "Evolution time per cycle run"),
    "cost_per_cycle": ("cost_per_cycle_usd", 1.0, "Evolution cost per cycle run, USD"),
    "pr_merge_rate": ("pr_merge_ratio", 0.01, "Merged / closed auto-evolution pull requests (0-1)"),
    "error_rate": ("error_ratio", 0.01, "Failed / all agent tasks (0-1)"),
}
LEVELS = {"normal": 0, "warning": 1, "alert": 2}


def base_unit(name: str, value: float) -> float:
    """A runbook-unit value (%, hours) in Prometheus' base unit (ratio, seconds)."""
    return round(value * PROMETHEUS[name][1], 9)
CLOUDWATCH_UNITS = {"%": "Percent", "count": "Count"}


def snapshot(store, window: metrics.Window) -> dict:
    """Everything an export shows: the key metrics, the security gate failures, when."""
    document = metrics.key_metrics(store, window)
    document["security_gate_failures"] = gates.security_findings(store)
    document["generated_at"] = time.time()
    return document


class KeyMetricsCollector:
    """A prometheus_client custom collector over one snapshot (no global registry, no process metrics)."""

    def __init__(self, document: dict):
        self.document = document

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        window = self.document["window"]
        state = GaugeMetricFamily(f"{PREFIX}_key_metric_state",
                                  "Key metric against config/thresholds.yaml: 0 normal, 1 warning, 2 alert",
                                  labels=["metric"])
        bound = GaugeMetricFamily(f"{PREFIX}_key_metric_threshold",
                                  "Normal and alert thresholds of config/thresholds.yaml, in the metric's base unit",
                                  labels=["metric", "level"])
        for m in self.document["metrics"]:
            name, _, text = PROMETHEUS[m["name"]]
            family = GaugeMetricFamily(f"{PREFIX}_{name}", f"{text}, over the last {window['label']}")
            if m["value"] is not None:
                family.add_metric([], base_unit(m["name"], m["value"]))
            yield family
            if m["status"] in LEVELS:
                state.add_metric([m["name"]], LEVELS[m["status"]])
            for level in ("normal", "alert"):
                if m[level] is not None:
                    bound.add_metric([m["name"], level], base_unit(m["name"], m[level]))
        yield state
        yield bound
        security = GaugeMetricFamily(f"{PREFIX}_security_gate_failures",
                                     "Security findings (security audit, else the security gate)")
        if self.document["security_gate_failures"] is not None:
            security.add_metric([], self.document["security_gate_failures"])
        yield security
        yield GaugeMetricFamily(f"{PREFIX}_metrics_window_seconds", "Length of the window the metrics cover",
                                value=metrics.timeparse.from_iso(window["end"]).timestamp()
                                - metrics.timeparse.from_iso(window["start"]).timestamp())
        yield GaugeMetricFamily(f"{PREFIX}_metrics_last_success_timestamp_seconds",
                                "When export_metrics.py last produced these metrics (Unix time)",
                                value=self.document["generated_at"])


def render(document: dict, fmt: str) -> str:
    """The snapshot as prometheus, openmetrics or json text."""
    if fmt == "json":
        import json

        return json.dumps(document, indent=2, default=str) + "\n"
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(KeyMetricsCollector(document))
    if fmt == "openmetrics":
        from prometheus_client.openmetrics.exposition import generate_latest
    else:
        from prometheus_client import generate_latest
    return generate_latest(registry).decode("utf-8")


def write(text: str, output: Path) -> None:
    """A textfile-collector-safe file: temp file in the same folder, rename, mode 0644."""
    atomic_write(output, text, mode=0o644)


def cloudwatch_data(document: dict) -> list[dict]:
    """MetricData for put_metric_data: the runbook's names and units; metrics without data are left out."""
    moment = document["generated_at"]
    data = [{"MetricName": m["metric"], "Value": float(m["value"]),
             "Unit": CLOUDWATCH_UNITS.get(m["unit"], "None"), "Timestamp": moment}
            for m in document["metrics"] if m["value"] is not None]
    if document["security_gate_failures"] is not None:
        data.append({"MetricName": "SecurityGateFailures", "Value": float(document["security_gate_failures"]),
                     "Unit": "Count", "Timestamp": moment})
    return data


def put_cloudwatch(document: dict, dry_run: bool) -> dict:
    """Put the metrics in the settings' namespace (TDeveloper); returns {namespace, metrics, sent}."""

    namespace = config.settings()["aws"]["cloudwatch_namespace"]
    data = cloudwatch_data(document)
    if data and not dry_run:
        with aws.aws_errors(f"put metric data in CloudWatch namespace {namespace}"):
            aws.client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=data)
    return {"namespace": namespace, "metrics": [{k: v for k, v in d.items() if k != "Timestamp"} for d in data],
            "sent": bool(data) and not dry_run}
