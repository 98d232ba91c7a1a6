"""Show the evolutions started since a point in time, newest first, with each one's test result
and IMPACT: the files it changed and how its focus's metrics moved (`no change` when unchanged).

--since takes today, yesterday, YYYY-MM-DD, an ISO timestamp or a duration (30m, 24h, 7d, 2w).

\b
Examples (runbook, Morning and Evening Checklists):
    python scripts/show_evolution_history.py --since yesterday
    python scripts/show_evolution_history.py --since today
    python scripts/show_evolution_history.py --since 7d --status failed --json
"""

import _bootstrap  # noqa: F401
import click

from lib import cli, timeparse
from lib.statuses import ACTIVE, FINAL


@click.command(help=__doc__)
@click.option("--since", "since_text", default="24h", show_default=True, metavar="WHEN",
              help="today, yesterday, YYYY-MM-DD, an ISO timestamp or a duration.")
@click.option("--status", "statuses", multiple=True, type=click.Choice(ACTIVE + FINAL),
              help="Only evolutions with this status (repeatable).")
@click.option("--target", help="Only evolutions of this target folder.")
@click.option("--limit", type=click.IntRange(min=0), default=200, show_default=True,
              help="Show the newest N (0: all).")
@cli.json_option
def main(since_text: str, statuses: tuple, target: str | None, limit: int, as_json: bool) -> int:
    from lib.insight import history
    from lib.store import open_store

    moment = timeparse.parse_since(since_text)
    records, more = history.page(open_store(), moment, statuses or None, limit, history.target_key(target))
    if more:
        cli.info(f"more than {limit} evolutions since {timeparse.local(timeparse.iso(moment))}; "
                 f"showing the newest {limit} (--limit 0 shows all)")
    if as_json:
        cli.print_json(records)
        return 0
    cli.print_table(map(history.evolution_row, records), history.HISTORY_COLUMNS,
                    empty=f"no evolutions since {timeparse.local(timeparse.iso(moment))}")
    if records:
        cli.info(history.tally(records))
    return 0


if __name__ == "__main__":
    cli.run(main)
