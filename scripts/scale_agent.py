"""Scale an agent: Lambda reserved concurrency (provisioned with --provisioned), ECS desired count.

\b
Example (runbook, Agent Not Responding):
    python scripts/scale_agent.py --name research-agent --instances 3
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--name", required=True, help="The agent's name (config/agents.yaml).")
@click.option("--instances", required=True, type=click.IntRange(min=0), help="New concurrency or desired count.")
@click.option("--provisioned", is_flag=True, help="Lambda: set provisioned concurrency on the agent's qualifier.")
@cli.dry_run_option
@cli.json_option
def main(name: str, instances: int, provisioned: bool, dry_run: bool, as_json: bool) -> int:
    from lib.ops import agent_fleet

    result = agent_fleet.scale(name, instances, provisioned, cli.is_dry_run(dry_run))
    if as_json:
        cli.print_json(result)
    else:
        old = "unset" if result["old"] is None else result["old"]
        click.echo(f"{name}: {result['what']} {old} -> {result['new']} ({result['result']})")
    return 0


if __name__ == "__main__":
    cli.run(main)
