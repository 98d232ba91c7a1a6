"""Find what drives cost: by service, by agent (cost allocation tag), by evolution; top drivers and trend.

Cost Explorer answers are cached in evolution_history/cache/; the request count is reported.
Without Cost Explorer (no AWS credentials, or it cannot be reached) it reports the tracked costs
from the evolution store by day, agent, model and phase, and says so; --source tracked|aws chooses.

\b
Example (runbook, High Costs):
    python scripts/cost_analysis.py --breakdown
    python scripts/cost_analysis.py --breakdown --days 7 --json
    python scripts/cost_analysis.py --breakdown --source tracked
"""

import _bootstrap  # noqa: F401
import click

from lib import cli
from lib.insight import COST_SOURCES


@click.command(help=__doc__)
@click.option("--breakdown", is_flag=True, help="Also show the tables by service, agent and evolution.")
@click.option("--days", type=click.IntRange(min=1, max=365), default=30, show_default=True, help="Days back.")
@click.option("--refresh", is_flag=True, help="Ask Cost Explorer again instead of using the cache.")
@click.option("--source", type=click.Choice(COST_SOURCES), default="auto", show_default=True,
              help="aws: Cost Explorer; tracked: the costs recorded by the evolutions; auto: aws when reachable.")
@cli.json_option
def main(breakdown: bool, days: int, refresh: bool, source: str, as_json: bool) -> int:
    from lib.insight import cost_analysis
    from lib.ops import costs
    from lib.store import open_store

    report = cost_analysis.analyze(days, open_store(), source, refresh)
    if as_json:
        cli.print_json(report)
    else:
        costs.print_period(report, breakdown)
    return 0


if __name__ == "__main__":
    cli.run(main)
