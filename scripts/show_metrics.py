"""Show the key metrics (success rate, cycle time, cost per cycle, PR merge rate, error rate)
against config/thresholds.yaml; with --trend, a row per day, the trend and a sparkline.

\b
Example (runbook, Morning Checklist):
    python scripts/show_metrics.py --trend --days 7
"""

import sys

import _bootstrap  # noqa: F401
import click

from lib import cli, insight


@click.command(help=__doc__)
@click.option("--trend", is_flag=True, help="One row per day, the direction of each metric and a sparkline.")
@click.option("--days", type=click.IntRange(min=1), default=7, show_default=True, help="Days in the trend.")
@click.option("--window", default=insight.DEFAULT_WINDOW, show_default=True,
              help="Without --trend: the window ending now (24h, 7d, 2w).")
@cli.json_option
def main(trend: bool, days: int, window: str, as_json: bool) -> int:
    from lib.insight import metrics
    from lib.store import open_store

    store = open_store()
    if trend:
        document = metrics.trend(store, days)
    else:
        document = metrics.key_metrics(store, metrics.window_back(window))
    if document["note"]:
        cli.info(f"note: PR merge rate: {document['note']}")
    if as_json:
        cli.print_json(document)
        return 0
    if trend:
        cli.print_table(*metrics.day_rows(document))
        print()
    cli.print_table(*metrics.metric_rows(document, spark=trend and sys.stdout.isatty()))
    return 0


if __name__ == "__main__":
    cli.run(main)
