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
    from lib.ops import costs
    from lib.store import open_store

    when = timeparse.parse_date(day)
    report = cost_analysis.show_day(when, open_store(), source, refresh)
    if as_json:
        cli.print_json(report)
    else:
        costs.print_day(report)
    return 0


if __name__ == "__main__":
    cli.run(main)
