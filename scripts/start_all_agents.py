"""Start every agent stopped by stop_all_agents.py, at exactly the capacity it had before the stop.

The capacity comes from the tag tdev:pre-stop-capacity (it survives a restore of the
store), which is then removed. Running it twice is harmless.

\b
Example (runbook, Recovery Procedures):
    python scripts/start_all_agents.py
"""

import _bootstrap  # noqa: F401
import click

from lib import agent_ops, cli
from lib.store import open_store


@click.command(help=__doc__)
@click.option("--name", help="Only this agent.")
@cli.dry_run_option
@cli.json_option
def main(name: str | None, dry_run: bool, as_json: bool) -> int:
    dry = cli.is_dry_run(dry_run)
    rows = agent_ops.start_all(agent_ops.select(name), open_store(create=not dry), dry)
    failed = [row["name"] for row in rows if not row["ok"]]
    if not dry:
        cli.audit("failed" if failed else "started", agents={row["name"]: row["result"] for row in rows})
    if as_json:
        cli.print_json([{k: v for k, v in row.items() if k != "ok"} for row in rows])
    else:
        cli.print_table(rows, agent_ops.ACTION_COLUMNS, empty="no agents registered (config/agents.yaml)")
    return 1 if failed else 0


if __name__ == "__main__":
    cli.run(main)
