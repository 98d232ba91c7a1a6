"""Back up one day of evolution history: that day's evolutions and tasks, their logs and artifacts.

The archive lands in <backup dir>/history/<day>/ and in the off-site bucket (settings
aws.backup_bucket, TDEV_BACKUP_BUCKET) at history/<day>/; a copy that cannot be made exits 1
with the local archive kept (--no-s3, or `aws.backup_bucket: null`, when none is wanted).

\b
Example (runbook, Evening Checklist):
    python scripts/backup_history.py --date today
"""

import _bootstrap  # noqa: F401
import click

from lib import cli, timeparse


@click.command(help=__doc__)
@click.option("--date", "day", default="today", show_default=True, help="today, yesterday or YYYY-MM-DD.")
@click.option("--no-s3", is_flag=True, help="Keep the backup local only.")
@cli.dry_run_option
@cli.json_option
@cli.verbose_option
def main(day: str, no_s3: bool, dry_run: bool, as_json: bool) -> int:
    from lib.backup import jobs
    from lib.ops import backups

    dry = cli.is_dry_run(dry_run)
    result, code = backups.backup("history", timeparse.parse_date(day), s3=not no_s3, dry_run=dry)
    if as_json or cli.report_wanted(important=bool(code) or dry):
        cli.emit(result, as_json, jobs.describe(result), jobs.DESCRIBE_COLUMNS)
    return code


if __name__ == "__main__":
    cli.run(main)
