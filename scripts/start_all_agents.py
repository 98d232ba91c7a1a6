"""Start every agent stopped by stop_all_agents.py, at exactly the capacity it had before the stop.

The capacity comes from the tag tdev:pre-stop-capacity (it survives a restore of the
store), which is then removed. Running it twice is harmless.

\b
Example (runbook, Recovery Procedures):
    python scripts/start_all_agents.py
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--name", help="Only this agent.")
@cli.dry_run_option
@cli.json_option
def main(name: str | None, dry_run: bool, as_json: bool) -> int:
    from lib.ops import agent_fleet as fleet

    rows, code = fleet.stop_or_start_all("start", name, cli.is_dry_run(dry_run))
    cli.emit(fleet.public(rows), as_json, rows, fleet.ACTION_COLUMNS,
             empty="no agents registered (config/agents.yaml)")
    return code


if __name__ == "__main__":
    cli.run(main)
