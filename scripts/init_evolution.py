"""Prepare T-Developer on this machine: evolution_history/, the state store, default config
and the default MCP client config. Safe to run twice: nothing that exists is overwritten,
except the MCP config with --reset-mcp (the previous file is kept as a dated .bak).

\b
Examples (runbook, MCP Connection Issues):
    python scripts/init_evolution.py
    python scripts/init_evolution.py --reset-mcp
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--reset-mcp", is_flag=True, help="Write the default MCP client config again (keeps a backup).")
def main(reset_mcp: bool) -> int:
    from lib.adapters import mcp_config
    from lib.ops import install

    for line in install.initialise():
        click.echo(line)
    click.echo(mcp_config.install_default(reset=reset_mcp))
    cli.audit("ok", reset_mcp=reset_mcp)
    return 0


if __name__ == "__main__":
    cli.run(main, makes_home=True)
