"""Find what drives cost: by service, by agent (cost allocation tag), by evolution; top drivers and trend.

Cost Explorer answers are cached in evolution_history/cache/; the request count is reported.

\b
Example (runbook, High Costs):
    python scripts/cost_analysis.py --breakdown
    python scripts/cost_analysis.py --breakdown --days 7 --json
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--breakdown", is_flag=True, help="Also show the tables by service, agent and evolution.")
@click.option("--days", type=click.IntRange(min=1, max=365), default=30, show_default=True, help="Days back.")
@click.option("--refresh", is_flag=True, help="Ask Cost Explorer again instead of using the cache.")
@cli.json_option
def main(breakdown: bool, days: int, refresh: bool, as_json: bool) -> int:
    from lib.adapters import aws
    from lib.ops import costs
    from lib.store import open_store

    aws.require_credentials("analyse costs")
    report = costs.analysis(days, open_store(), costs.CostExplorer(refresh))
    if as_json:
        cli.print_json(report)
        return 0
    costs.print_analysis(report, breakdown)
    requests = report["ce_requests"]
    cli.info(f"Cost Explorer requests: {requests['made']} made (about ${requests['made'] * 0.01:.2f}), "
             f"{requests['cached']} cached")
    return 0


if __name__ == "__main__":
    cli.run(main)
