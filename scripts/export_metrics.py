"""Export the key metrics: Prometheus text (default), OpenMetrics, JSON, or CloudWatch
(put_metric_data in namespace TDeveloper: EvolutionSuccessRate, CycleTime, CostPerCycle,
PRMergeRate, ErrorRate, SecurityGateFailures).

With --output the file is replaced atomically (node_exporter textfile collector safe).

\b
Example (runbook, Appendix):
    python scripts/export_metrics.py --format prometheus
\b
Cron, for node_exporter's textfile collector and for CloudWatch alarms:
    */5 * * * * python scripts/export_metrics.py --output /var/lib/node_exporter/tdeveloper.prom
    */5 * * * * python scripts/export_metrics.py --format cloudwatch
"""

from pathlib import Path

import _bootstrap  # noqa: F401
import click

from lib import cli
from lib.insight import exposition, metrics
from lib.store import open_store


@click.command(help=__doc__)
@click.option("--format", "fmt", type=click.Choice(exposition.FORMATS), default="prometheus", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write this file instead of stdout.")
@click.option("--window", default=metrics.DEFAULT_WINDOW, show_default=True, help="Window the metrics cover.")
@cli.dry_run_option
def main(fmt: str, output: Path | None, window: str, dry_run: bool) -> int:
    if fmt == "cloudwatch" and output:
        raise click.UsageError("--output does not apply to --format cloudwatch")
    with cli.lock(f"export_metrics-{fmt}"):
        document = exposition.snapshot(open_store(), metrics.window_back(window))
        if fmt != "cloudwatch":
            exposition.write(exposition.render(document, fmt), output)
            return 0
        dry = cli.is_dry_run(dry_run)
        sent = exposition.put_cloudwatch(document, dry)
    if not dry:
        cli.audit("ok" if sent["sent"] else "nothing to send", namespace=sent["namespace"],
                  metrics=[m["MetricName"] for m in sent["metrics"]])
    verb = "would put" if dry else "put"
    cli.info(f"{verb} {len(sent['metrics'])} metrics in CloudWatch namespace {sent['namespace']}")
    cli.print_table(sent["metrics"], [("MetricName", "METRIC"), ("Value", "VALUE"), ("Unit", "UNIT")],
                    empty="no metric has data in the window; nothing sent")
    return 0


if __name__ == "__main__":
    cli.run(main)
