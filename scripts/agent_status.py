"""Show each agent's state: runtime, version or last change, capacity, errors in the last hour, health URL.

Agents are queried concurrently. Exit 1 when an agent's status could not be read.

\b
Example (runbook, Appendix):
    python scripts/agent_status.py --all
    python scripts/agent_status.py --name research-agent --json
"""

import _bootstrap  # noqa: F401
import click

from lib import cli
from lib.errors import UsageError


@click.command(help=__doc__)
@click.option("--all", "all_agents", is_flag=True, help="Every agent of config/agents.yaml.")
@click.option("--name", help="One agent by name.")
@cli.json_option
def main(all_agents: bool, name: str | None, as_json: bool) -> int:
    from lib.agents import fleet
    from lib.ops import agent_fleet

    if bool(all_agents) == bool(name):
        raise UsageError("give either --all or --name NAME", "see agent_status.py --help")
    rows = fleet.status_all(fleet.select(name))
    cli.emit(agent_fleet.public(rows), as_json, rows, agent_fleet.STATUS_COLUMNS,
             empty="no agents registered (config/agents.yaml)")
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    cli.run(main)
