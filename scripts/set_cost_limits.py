"""Set the daily and per-cycle cost limits: config/cost_limits.yaml (the runner and pre_evolution_check
enforce it) and the AWS Budget t-developer-daily (DAILY, COST) with notifications to notify-team.

\b
Example (runbook, High Costs):
    python scripts/set_cost_limits.py --daily 100 --per-cycle 10
"""

import _bootstrap  # noqa: F401
import click

from lib import cli, config
from lib.adapters import aws
from lib.errors import ToolError
from lib.ops import costs

USD = click.FloatRange(min=0, min_open=True)


@click.command(help=__doc__)
@click.option("--daily", type=USD, required=True, help="Daily limit in USD.")
@click.option("--per-cycle", "per_cycle", type=USD, required=True, help="Limit per evolution cycle in USD.")
@cli.dry_run_option
@cli.json_option
def main(daily: float, per_cycle: float, dry_run: bool, as_json: bool) -> int:
    if cli.is_dry_run(dry_run):
        before = config.cost_limits()
        click.echo(f"would set daily ${daily:g} (now {before['daily_usd']}), per cycle ${per_cycle:g} "
                   f"(now {before['per_cycle_usd']}) and the budget {config.settings()['aws']['budget_name']}")
        return 0
    before = costs.write_limits(daily, per_cycle)
    after = {"daily_usd": daily, "per_cycle_usd": per_cycle}
    cli.info(f"wrote {config.path_of('cost_limits')}")
    try:
        aws.require_credentials("set the AWS Budget (the local limits are written)")
        budget = costs.apply_budget(daily)
    except ToolError:
        cli.audit("failed", before=before, after=after, budget="not set")
        raise
    cli.audit("set", before=before, after=after, budget=budget["result"])
    if as_json:
        cli.print_json({"before": before, "after": after, **budget})
    else:
        click.echo(f"daily ${before['daily_usd']} -> ${daily:g}, per cycle ${before['per_cycle_usd']} -> "
                   f"${per_cycle:g}; budget {budget['budget']} {budget['result']} (${budget['limit_usd']:.2f}/day, "
                   f"notifies {budget['topic'].rsplit(':', 1)[-1]})")
    return 0


if __name__ == "__main__":
    cli.run(main)
