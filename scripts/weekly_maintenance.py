"""Friday maintenance: full backup, temp cleanup, gc, log archive, pattern update.

Every step runs (as the runbook script it names) even when an earlier one fails, and is
reported in a table; the exit code is 1 when any step failed. --dry-run passes
EVOLUTION_DRY_RUN=true to every step.

\b
Example (runbook, Weekly Tasks):
    # Friday: Backup and cleanup
    python scripts/weekly_maintenance.py
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--step-timeout", type=click.FloatRange(min=1), default=7200, show_default=True,
              help="Seconds one step may take before it counts as failed.")
@cli.dry_run_option
@cli.json_option
@cli.verbose_option
def main(step_timeout: float, dry_run: bool, as_json: bool) -> int:
    from lib.ops import backups

    rows, code = backups.weekly_maintenance(cli.is_dry_run(dry_run), step_timeout)
    if as_json:
        cli.print_json({"status": "failed" if code else "ok", "steps": rows})
    elif cli.report_wanted(important=bool(code) or cli.is_dry_run(dry_run)):
        cli.print_table(rows, [("step", "STEP"), ("status", "STATUS"), ("exit", "EXIT"), ("seconds", "SECONDS"),
                               ("detail", "DETAIL")])
    return code


if __name__ == "__main__":
    cli.run(main)
