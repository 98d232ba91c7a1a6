"""Back up the evolution history: --daily (store, the day's logs, config) or --full (everything).

Archives go to the local backup folder (/backups/t-developer/, TDEV_BACKUP_DIR) and to the
off-site bucket (settings aws.backup_bucket, TDEV_BACKUP_BUCKET) with a SHA-256 checksum. When
that copy cannot be made (no credentials, an AWS error) the run exits 1 and keeps the local
archive; `aws.backup_bucket: null` says no off-site copy is wanted, --no-s3 for one run. A
history whose store is lost is not archived (exit 1; restore it first). Old backups are pruned
(retention.keep_daily / keep_weekly), never the newest holding the store nor below
retention.keep_min of those; --dry-run shows what would be written and pruned.

\b
Example (runbook, Disaster Recovery > Backup Procedures):
    0 2 * * * python scripts/backup.py --daily
    0 3 * * 0 python scripts/backup.py --full
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--daily", "kind", flag_value="daily", help="The store, the logs changed since yesterday, config/.")
@click.option("--full", "kind", flag_value="full", help="Everything: artifacts, config, MCP config, audit log.")
@click.option("--no-s3", is_flag=True, help="Keep this backup local only (no off-site copy, exit 0).")
@cli.dry_run_option
@cli.json_option
@cli.verbose_option
def main(kind: str | None, no_s3: bool, dry_run: bool, as_json: bool) -> int:
    from lib.backup import jobs
    from lib.ops import backups

    if kind is None:
        raise click.UsageError("choose --daily or --full")
    dry = cli.is_dry_run(dry_run)
    result, code = backups.backup(kind, None, s3=not no_s3, dry_run=dry)
    if as_json or cli.report_wanted(important=bool(code) or dry):
        cli.emit(result, as_json, jobs.describe(result), jobs.DESCRIBE_COLUMNS)
    return code


if __name__ == "__main__":
    cli.run(main)
