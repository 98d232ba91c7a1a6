"""Restart MCP servers, then test each one again.

Long-running (http) servers with a `command` are stopped (TERM, then KILL after 5 s) and
started detached with their logs (~/.mcp/logs/, or TDEV_MCP_LOG_DIR) and a pid file; running stdio server
processes are ended so that their clients start fresh ones.

\b
Example (runbook, MCP Connection Issues):
    python scripts/restart_mcp.py --all
    python scripts/restart_mcp.py --name filesystem --dry-run
"""

import _bootstrap  # noqa: F401
import click

from lib import cli, paths
from lib.errors import UsageError


@click.command(help=__doc__)
@click.option("--all", "every", is_flag=True, help="Restart every configured server.")
@click.option("--name", help="Restart one server by its name in the MCP config.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=15.0, show_default=True,
              help="Seconds each server has to answer the test after the restart.")
@cli.dry_run_option
@cli.json_option
def main(every: bool, name: str | None, timeout: float, dry_run: bool, as_json: bool) -> int:
    from lib.adapters import mcp_config
    from lib.ops import mcp_servers

    if every == bool(name):
        raise UsageError("give either --all or --name <server>")
    servers = mcp_config.select(mcp_config.load(), "all" if every else name)
    dry = cli.is_dry_run(dry_run)
    rows = mcp_servers.restart(servers, timeout, dry)
    failed = [row["name"] for row in rows if row["status"] == "failed"]
    if as_json:
        cli.print_json({"dry_run": dry, "servers": rows})
    else:
        cli.print_table(rows, [("name", "SERVER"), ("action", "ACTION"), ("status", "TEST"), ("error", "REASON")])
    if failed:
        logs = paths.mcp_log_dir()  # TDEV_MCP_LOG_DIR moves them (DESIGN §8)
        cli.info(f"{len(failed)} server(s) failed the test after the restart: {', '.join(failed)}; "
                 f"see {', '.join(str(logs / f'{name}.log') for name in failed)} and {logs / 'server.log'}")
    return 1 if failed else 0


if __name__ == "__main__":
    cli.run(main)
