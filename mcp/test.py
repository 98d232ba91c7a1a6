"""Test the configured MCP servers: handshake, protocol version, tools; all at once.

Each server in packages/mcp/clients/claude.mcp.json (TDEV_MCP_CONFIG) is started (stdio)
or reached (http) and asked initialize + tools/list within --timeout seconds. Exit codes:
0 all answered, 1 no server configured, 2 a server failed, 3 the config could not be read.
Server stderr: ~/.mcp/logs/<name>.log and server.log.

\b
Example (runbook, MCP Connection Issues):
    python -m mcp.test all
    python -m mcp.test filesystem --json --timeout 20
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(1, ROOT)

import click

from lib import cli
from lib.adapters import mcp_config, mcp_control
from lib.ops import mcp_servers


@click.command(help=__doc__)
@click.argument("server", default="all")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds each server has for the whole handshake.")
@cli.json_option
@cli.notify_option
def main(server: str, timeout: float, as_json: bool, notify: bool) -> int:
    servers = mcp_config.select(mcp_config.load(), server)
    rows = mcp_control.test_all(servers, timeout)
    code = cli.conclude(mcp_control.report(rows), notify, mode=None if server == "all" else server)
    mcp_servers.print_report(rows, as_json)  # after the page: a closed pipe cannot swallow it
    return code


if __name__ == "__main__":
    sys.argv[0] = "python -m mcp.test"  # the name usage lines and the audit show
    cli.run(main, check=True)
