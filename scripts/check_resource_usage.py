"""Show an agent's last hour from CloudWatch against its limits, with a warning where a figure nears one.

Lambda: invocations, errors, throttles, duration p50/p99/max against the timeout,
concurrency against its limit. ECS: CPU and memory utilisation, running against desired.

\b
Example (runbook, Agent Not Responding):
    python scripts/check_resource_usage.py --agent research-agent
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--agent", "name", required=True, help="The agent's name (config/agents.yaml).")
@cli.json_option
def main(name: str, as_json: bool) -> int:
    from lib import agents
    from lib.agents import fleet
    from lib.ops import agent_fleet

    agent = agents.get(name)
    rows = fleet.usage(agent)
    if as_json:
        cli.print_json({"name": name, "runtime": agent["runtime"], "figures": rows})
        return 0
    if not rows:
        cli.info(f"{name} runs on this machine ({agent['runtime']} runtime): no CloudWatch figures")
        return 0
    cli.print_table(rows, agent_fleet.USAGE_COLUMNS)
    warnings = [row["figure"] for row in rows if row["status"] == "warning"]
    if warnings:
        cli.info(f"warning: {name}: {', '.join(warnings)} near the limit")
    return 0


if __name__ == "__main__":
    cli.run(main)
