"""Show one day's cost: Cost Explorer by service, the evolutions' own tracked cost, against the daily limit.

Cost Explorer answers are cached in evolution_history/cache/ (each request costs money).

\b
Example (runbook, Morning Checklist):
    python scripts/show_costs.py --date yesterday
"""

import _bootstrap  # noqa: F401
import click

from lib import cli, timeparse


@click.command(help=__doc__)
@click.option("--date", "day", default="yesterday", show_default=True, help="today, yesterday or YYYY-MM-DD.")
@click.option("--refresh", is_flag=True, help="Ask Cost Explorer again instead of using the cache.")
@cli.json_option
def main(day: str, refresh: bool, as_json: bool) -> int:
    from lib.adapters import aws
    from lib.ops import costs
    from lib.store import open_store

    when = timeparse.parse_date(day)
    aws.require_credentials("read costs")
    report = costs.day_report(when, open_store(), costs.CostExplorer(refresh))
    if as_json:
        cli.print_json(report)
        return 0
    cli.print_table(report["services"], [("service", "SERVICE"), ("cost_usd", "USD"), ("share_pct", "%")],
                    empty=f"Cost Explorer has no costs for {report['date']}")
    limit = report["daily_limit_usd"]
    click.echo(f"\n{report['date']}: AWS ${report['aws_total_usd']:.2f}, evolutions tracked "
               f"${report['tracked_usd']:.2f} ({len(report['evolutions'])} evolutions), daily limit "
               + (f"${limit:.2f} ({report['aws_share_of_limit_pct']}% used)" if limit else "not set "
                  "(python scripts/set_cost_limits.py --daily 100 --per-cycle 10)"))
    if report["over_limit"]:
        cli.info(f"warning: {report['date']} is over the daily limit of ${limit:.2f}")
    cli.info(f"Cost Explorer requests: {report['ce_requests']['made']} made, {report['ce_requests']['cached']} cached")
    return 0


if __name__ == "__main__":
    cli.run(main)
