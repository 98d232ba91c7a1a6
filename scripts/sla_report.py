"""SLA report for one month: per key metric the target (its normal bound in
config/thresholds.yaml), the achieved value, the breach (minutes or count) and the error
budget left.

\b
Example (runbook, Appendix):
    python scripts/sla_report.py --month 2024-01
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--month", help="YYYY-MM (default: the previous month).")
@cli.json_option
def main(month: str | None, as_json: bool) -> int:
    from lib.insight import reports
    from lib.store import open_store

    document = reports.sla(open_store(), reports.month_window(month))
    if as_json:
        cli.print_json(document)
        return 0
    click.echo(f"SLA {document['month']} ({document['window']['start']} to {document['window']['end']})")
    cli.print_table(reports.sla_rows(document), [(key, header.upper()) for key, header in reports.SLA_COLUMNS])
    for row in document["metrics"]:
        if row.get("note"):
            cli.info(f"note: {row['label']}: {row['note']}")
    return 0


if __name__ == "__main__":
    cli.run(main)
