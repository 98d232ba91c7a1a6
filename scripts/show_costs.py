"""Show one day's cost: Cost Explorer by service, the evolutions' own tracked cost, against the daily limit.

Without Cost Explorer (no AWS credentials, or it cannot be reached) it shows the tracked costs from
the evolution store by agent, model and phase, and says so; --source tracked|aws chooses explicitly.

Cost Explorer answers are cached in evolution_history/cache/ (each request costs money).

\b
Example (runbook, Morning Checklist):
    python scripts/show_costs.py --date yesterday
    python scripts/show_costs.py --date today --source tracked
"""

import _bootstrap  # noqa: F401
import click

from lib import cli, timeparse
from lib.insight import COST_SOURCES


@click.command(help=__doc__)
@click.option("--date", "day", default="yesterday", show_default=True, help="today, yesterday or YYYY-MM-DD.")
@click.option("--refresh", is_flag=True, help="Ask Cost Explorer again instead of using the cache.")
@click.option("--source", type=click.Choice(COST_SOURCES), default="auto", show_default=True,
              help="aws: Cost Explorer; tracked: the costs recorded by the evolutions; auto: aws when reachable.")
@cli.json_option
def main(day: str, refresh: bool, source: str, as_json: bool) -> int:
    from lib.insight import cost_analysis
    from lib.store import open_store

    when = timeparse.parse_date(day)
    report = cost_analysis.show_day(when, open_store(), source, refresh)
    if as_json:
        cli.print_json(report)
        return 0
    if report["source"] == "tracked":
        return _tracked(report)
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
    cli.info("source: AWS Cost Explorer")
    return 0


def _tracked(report: dict) -> int:
    from lib.ops import costs

    limit = report["daily_limit_usd"]
    click.echo(f"{report['date']}: tracked ${report['tracked_usd']:.4f} ({len(report['evolutions'])} evolutions), "
               "daily limit " + (f"${limit:.2f}" if limit else "not set"))
    costs.print_tracked(report, breakdown=True)
    if report["over_limit"]:
        cli.info(f"warning: {report['date']} is over the daily limit of ${limit:.2f}")
    cli.info(f"source: tracked costs from the evolution store ({report['source_note']})")
    return 0


if __name__ == "__main__":
    cli.run(main)
