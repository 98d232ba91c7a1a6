"""The backup commands: backup.py, backup_history.py, restore.py, weekly_maintenance.py and
archive_logs.py. Each holds the cron lock, calls lib/backup/ and writes the audit line."""

from __future__ import annotations

from datetime import date, timedelta

from lib import audit, cli, locks
from lib.backup import jobs, log_archive, maintenance, repository, restore
from lib.errors import ToolError


def backup(kind: str, day: date | None, s3: bool, dry_run: bool) -> tuple[dict, int]:
    """Lock, clean what a killed run left, back up, audit; exit 1 when the S3 copy failed.

    Under cron (cli.quiet) the table is not printed, so the archive's warnings go to stderr here, and
    a skipped S3 copy is said unless the operator asked for it with --no-s3.
    """
    if dry_run:
        return jobs.create(kind, day, s3, dry_run=True), 0
    with locks.lock("backup"):
        leftovers = repository.clean_stale()
        result = jobs.create(kind, day, s3, progress=cli.progress, meter=cli.meter)
    result["cleaned"] = leftovers
    failed = result["s3"]["status"] == "failed"
    audit.audit("failed" if failed else "ok", kind=kind, archive=result["archive"], s3=result["s3"]["status"],
                deleted=result.get("retention", {}).get("local", []))
    if failed:
        cli.info(f"error: S3 copy failed: {result['s3']['error']} (the local archive is kept: {result['archive']})")
    if result["s3"]["status"] == "skipped":
        (cli.info if s3 else cli.note)(f"note: {result['s3']['note']}")
    if not cli.report_wanted(important=failed):
        for warning in result["warnings"]:
            cli.info(f"warning: {warning}")
    return result, 1 if failed else 0


def restore_backup(day: date, source: str | None, kind: str, confirm: bool) -> dict:
    """The plan without --confirm; with it, the restore under the backup lock, audited."""
    if not confirm:
        return restore.plan(day, source, kind)
    with locks.lock("backup"):
        try:
            result = restore.run(day, source, kind, meter=cli.meter)
        except ToolError as failure:
            audit.audit("failed", date=day.isoformat(), error=str(failure))
            raise
    audit.audit("ok", date=day.isoformat(), archives=[a["key"] for a in result["archives"]], aside=result["aside"])
    return result


def weekly_maintenance(dry_run: bool, timeout: float) -> tuple[list[dict], int]:
    """Every step under the lock, audited; exit 1 when any step failed."""
    with locks.lock("weekly_maintenance"):
        rows = maintenance.run(dry_run, timeout)
    failed = [row["step"] for row in rows if row["status"] != "ok"]
    if not dry_run:
        audit.audit("failed" if failed else "ok", failed=failed)
    return rows, 1 if failed else 0


def archive_logs(older_than: timedelta, dry_run: bool) -> list[dict]:
    return log_archive.archive(older_than, dry_run, progress=cli.progress)
