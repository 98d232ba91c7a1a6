"""Performance of the last week: phase durations p50/p95 by agent, the bottleneck phase, the
slowest evolutions, and the change against the week before.

\b
Example (runbook, Weekly Tasks, Wednesday):
    python scripts/analyze_performance.py --week
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--week", "period", flag_value=7, default=True, help="The last 7 days against the 7 before (default).")
@click.option("--days", "period", type=click.IntRange(min=1), help="Another period length in days.")
@click.option("--slowest", type=click.IntRange(min=1), default=5, show_default=True, help="Slowest evolutions shown.")
@cli.json_option
def main(period: int, slowest: int, as_json: bool) -> int:
    from lib.insight import reports
    from lib.store import open_store

    document = reports.performance(open_store(), days=period, slowest=slowest)
    if as_json:
        cli.print_json(document)
        return 0
    click.echo(reports.performance_headline(document))
    for title, (rows, columns) in reports.performance_tables(document).items():
        click.echo(f"\n{title}")
        cli.print_table(rows, columns, empty="  none in this period")
    return 0


if __name__ == "__main__":
    cli.run(main)
