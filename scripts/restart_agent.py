"""Restart an agent: Lambda gets fresh execution environments, ECS a new deployment (waits for a
steady state), AgentCore a runtime update.

\b
Example (runbook, Agent Not Responding):
    python scripts/restart_agent.py --name research-agent
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--name", required=True, help="The agent's name (config/agents.yaml).")
@cli.dry_run_option
@cli.json_option
def main(name: str, dry_run: bool, as_json: bool) -> int:
    from lib.ops import agent_fleet

    result = agent_fleet.restart(name, cli.is_dry_run(dry_run))
    if as_json:
        cli.print_json(result)
    else:
        click.echo(f"{name}: {result['result']} {result['detail']}".rstrip())
    return 0


if __name__ == "__main__":
    cli.run(main)
