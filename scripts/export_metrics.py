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

from lib import cli, insight


@click.command(help=__doc__)
@click.option("--format", "fmt", type=click.Choice(insight.FORMATS), default="prometheus", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write this file instead of stdout.")
@click.option("--window", default=insight.DEFAULT_WINDOW, show_default=True, help="Window the metrics cover.")
@cli.dry_run_option
@cli.verbose_option
def main(fmt: str, output: Path | None, window: str, dry_run: bool) -> int:
    from lib.ops import metrics_export

    if fmt == "cloudwatch" and output:
        raise click.UsageError("--output does not apply to --format cloudwatch")
    metrics_export.export(fmt, output, window, cli.is_dry_run(dry_run))
    return 0


if __name__ == "__main__":
    cli.run(main)
