"""Find resources that cost more than they need, each with its fix, and apply the fixes.

Lambda memory far above the memory used, log groups without retention, reserved
concurrency nobody used for a week. --aggressive also scales idle ECS services to 0
(start_all_agents.py restores them) and stops standalone ECS tasks running past
TIMEOUT_SECONDS. --dry-run lists the findings and changes nothing.

\b
Example (runbook, High Costs):
    python scripts/optimize_resources.py --aggressive
    python scripts/optimize_resources.py --dry-run
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--aggressive", is_flag=True, help="Also scale idle ECS services down and stop overdue tasks.")
@cli.dry_run_option
@cli.json_option
def main(aggressive: bool, dry_run: bool, as_json: bool) -> int:
    from lib.adapters import aws
    from lib.ops import optimize
    from lib.store import open_store

    dry = cli.is_dry_run(dry_run)
    aws.require_credentials("look for savings")
    rows = optimize.optimize(open_store(create=not dry), aggressive, dry)
    failed = [row["resource"] for row in rows if row["result"].startswith("failed")]
    if not dry:
        cli.audit("failed" if failed else "optimized", aggressive=aggressive,
                  fixed=[f"{row['kind']}: {row['resource']}" for row in rows if row["result"] == "fixed"])
    if as_json:
        cli.print_json([dict(row) for row in rows])
    else:
        cli.print_table(rows, optimize.COLUMNS, empty="nothing to optimize")
    return 1 if failed else 0


if __name__ == "__main__":
    cli.run(main)
