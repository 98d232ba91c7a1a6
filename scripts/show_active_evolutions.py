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
    from lib.insight import history
    from lib.store import open_store

    records = history.active(open_store())
    if as_json:
        cli.print_json(records)
    else:
        cli.print_table(map(history.evolution_row, records), history.EVOLUTION_COLUMNS,
                        empty="no active evolutions")
    return 0


if __name__ == "__main__":
    cli.run(main)
