"""Write the monthly report: Markdown with the key metrics, costs, evolutions, pull requests,
failures and SLA, and PNG charts of the daily metrics and cost beside it (when matplotlib is
installed: pip install matplotlib; without it the report says where the charts would be).

Default: the previous month, written to evolution_history/reports/monthly-report-YYYY-MM.md.

\b
Example (runbook, Monthly Tasks):
    python scripts/generate_monthly_report.py
    python scripts/generate_monthly_report.py --month 2024-01 --output report-2024-01.md
"""

from pathlib import Path

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--month", help="YYYY-MM (default: the previous month).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="The Markdown file to write.")
@cli.json_option
@cli.verbose_option
def main(month: str | None, output: Path | None, as_json: bool) -> int:
    from lib.insight import reports
    from lib.store import open_store

    window = reports.month_window(month)
    with cli.lock("generate_monthly_report"):
        result = reports.monthly(open_store(), window, output)
    if as_json:
        cli.print_json(result)
    elif cli.report_wanted():
        click.echo(f"report {result['report']}")
        for name, path in result["charts"].items():
            click.echo(f"chart  {path} ({name})")
        if result["charts_note"]:
            cli.info(f"note: {result['charts_note']}")
    return 0


if __name__ == "__main__":
    cli.run(main)
