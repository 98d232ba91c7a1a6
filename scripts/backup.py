"""Back up the evolution history: --daily (store, the day's logs, config) or --full (everything).

Archives go to the local backup folder (/backups/t-developer/, TDEV_BACKUP_DIR) and, when
AWS credentials are configured, to s3://t-developer-backups/ (TDEV_BACKUP_BUCKET) with a
SHA-256 checksum. Old backups are pruned (settings retention.keep_daily / keep_weekly);
--dry-run shows what would be written and pruned.

\b
Example (runbook, Disaster Recovery > Backup Procedures):
    0 2 * * * python scripts/backup.py --daily
    0 3 * * 0 python scripts/backup.py --full
"""

import _bootstrap  # noqa: F401
import click

from lib import cli
from lib.backup import jobs
from lib.ops import backups


@click.command(help=__doc__)
@click.option("--daily", "kind", flag_value="daily", help="The store, the logs changed since yesterday, config/.")
@click.option("--full", "kind", flag_value="full", help="Everything: artifacts, config, MCP config, audit log.")
@click.option("--no-s3", is_flag=True, help="Keep the backup local only.")
@cli.dry_run_option
@cli.json_option
@cli.verbose_option
def main(kind: str | None, no_s3: bool, dry_run: bool, as_json: bool) -> int:
    if kind is None:
        raise click.UsageError("choose --daily or --full")
    dry = cli.is_dry_run(dry_run)
    result, code = backups.backup(kind, None, s3=not no_s3, dry_run=dry)
    if as_json or cli.report_wanted(important=bool(code) or dry):
        cli.emit(result, as_json, jobs.describe(result), jobs.DESCRIBE_COLUMNS)
    return code


if __name__ == "__main__":
    cli.run(main)
