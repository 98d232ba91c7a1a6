"""Set the daily and per-cycle cost limits: config/cost_limits.yaml (the runner and pre_evolution_check
enforce it) and the AWS Budget t-developer-daily (DAILY, COST) with notifications to notify-team.

\b
Example (runbook, High Costs):
    python scripts/set_cost_limits.py --daily 100 --per-cycle 10
"""

import _bootstrap  # noqa: F401
import click

from lib import cli

USD = click.FloatRange(min=0, min_open=True)


@click.command(help=__doc__)
@click.option("--daily", type=USD, required=True, help="Daily limit in USD.")
@click.option("--per-cycle", "per_cycle", type=USD, required=True, help="Limit per evolution cycle in USD.")
@cli.dry_run_option
@cli.json_option
def main(daily: float, per_cycle: float, dry_run: bool, as_json: bool) -> int:
    from lib.ops import costs

    costs.set_limits(daily, per_cycle, cli.is_dry_run(dry_run), as_json)
    return 0


if __name__ == "__main__":
    cli.run(main)
