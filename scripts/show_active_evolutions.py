"""Show evolutions that are pending, running or stopping.

\b
Example (runbook, Stopping a Runaway Evolution):
    python scripts/show_active_evolutions.py
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@cli.json_option
def main(as_json: bool) -> int:
    from lib.evolution import executors
    from lib.insight import history
    from lib.store import open_store

    records = executors.with_execution(history.active(open_store()))
    if as_json:
        cli.print_json(records)
    else:
        rows = ({**history.evolution_row(r), "where": executors.where(r)} for r in records)
        cli.print_table(rows, [*history.EVOLUTION_COLUMNS, ("where", "EXECUTOR")], empty="no active evolutions")
    for record in records:
        if record["problem"]:
            cli.info(f"CRITICAL: {record['id']} {record['problem']}")
    return 0


if __name__ == "__main__":
    cli.run(main)
