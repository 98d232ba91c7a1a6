"""Archive application logs past an age: zstd, S3 with a SHA-256 checksum, verify, then remove.

Each file becomes s3://<backup bucket>/logs/<YYYY-MM-DD>/<file>.zst with a local copy
under <backup dir>/logs/. Also sets retention (settings retention.log_retention_days)
on the project's CloudWatch log groups that keep events forever. Takes a lock (cron).

\b
Example (runbook, Monthly Tasks):
    python scripts/archive_logs.py --older-than 30d
"""

import _bootstrap  # noqa: F401
import click

from lib import cli, humanize, timeparse


@click.command(help=__doc__)
@click.option("--older-than", "older_than", required=True, help="Age of the files to archive: 30d, 2w, 24h.")
@cli.dry_run_option
@cli.json_option
@cli.verbose_option
def main(older_than: str, dry_run: bool, as_json: bool) -> int:
    from lib.adapters import aws
    from lib.backup import log_archive
    from lib.ops import backups

    age = timeparse.parse_duration(older_than)
    dry = cli.is_dry_run(dry_run)
    aws.require_credentials("archive logs")
    with cli.lock("archive_logs"):
        files = backups.archive_logs(age, dry)
        groups = log_archive.set_retention(dry)
    failed = [row["file"] for row in files if not row["ok"]]
    if not dry:
        cli.audit("failed" if failed else "archived", files=len(files), failed=failed,
                  retention_set=[g["log_group"] for g in groups if g["result"] == "set"])
    if as_json:
        cli.print_json({"files": [{k: v for k, v in r.items() if k != "ok"} for r in files], "log_groups": groups})
        return 1 if failed else 0
    if not cli.report_wanted(important=bool(failed) or dry):
        return 0
    shown = [{**row, "size": humanize.size(row["size"]), "compressed": humanize.size(row["compressed"])}
             for row in files]
    cli.print_table(shown, log_archive.FILE_COLUMNS, empty=f"no log files older than {older_than}")
    cli.print_table(groups, log_archive.GROUP_COLUMNS, empty="no project log groups in CloudWatch")
    return 1 if failed else 0


if __name__ == "__main__":
    cli.run(main)
