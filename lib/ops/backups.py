"""The backup commands: backup.py, backup_history.py, restore.py, weekly_maintenance.py and
archive_logs.py. Each holds the cron lock, calls lib/backup/ and writes the audit line."""

from __future__ import annotations

import errno
import os
import sqlite3
from datetime import date, timedelta
from pathlib import Path

from lib import audit, cli, locks
from lib.archives import repository
from lib.backup import jobs
from lib.errors import ToolError
from lib.store import exclusive, refuse_lost_store

#: A restore's claim on a store shared between hosts lapses after this, should its host die mid-restore.
RESTORE_CLAIM_SECONDS = 6 * 3600


def _backup_failure(failure: Exception, folder: Path) -> ToolError:
    """One line naming the path and the fix; SQLite's "database or disk is full" (its snapshot is written in
    the backup folder) reads as ENOSPC does."""
    if isinstance(failure, ToolError):
        return failure
    if isinstance(failure, sqlite3.Error):
        full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder))
        if (getattr(failure, "sqlite_errorcode", 0) or 0) & 0xFF != sqlite3.SQLITE_FULL \
                and "disk is full" not in str(failure):
            return ToolError(f"backup failed: the store snapshot in {folder}: {failure}",
                             f"{repository.destination_fix(folder, full)}; if it has room, check the store: "
                             "python scripts/health_check.py")
        failure = full
    where = Path(failure.filename or folder)
    fix = (repository.destination_fix(folder, failure) if where.is_relative_to(folder)
           else f"check that {where} exists and this user may read it")
    return ToolError(f"backup failed: {where}: {failure.strerror or failure}", fix)


def backup(kind: str, day: date | None, s3: bool, dry_run: bool) -> tuple[dict, int]:
    """Lock, clean what a killed run left, back up, audit; exit 1 when a wanted off-site copy was not made.

    A destination that cannot be written, and any OS error on the way, is one line naming the path and the fix.
    Under cron (cli.quiet) the table is not printed, so the archive's warnings go to stderr here.
    """
    if dry_run:
        return jobs.create(kind, day, s3, dry_run=True), 0
    repository.check_destination()
    folder = repository.local_dir()
    with locks.backup_lock():
        try:
            leftovers = repository.clean_stale()
            result = jobs.create(kind, day, s3, progress=cli.progress, meter=cli.meter)
        except jobs.StoreMissing as refused:
            audit.audit("refused", kind=kind, error=refused.message)
            raise
        except (OSError, sqlite3.Error, ToolError) as failure:
            failed = _backup_failure(failure, folder)
            audit.audit("failed", kind=kind, error=str(failed))
            raise failed from failure
    result["cleaned"] = leftovers
    offsite = result["s3"]
    failed = offsite["status"] in ("failed", "skipped")
    audit.audit("failed" if failed else "ok", kind=kind, archive=result["archive"], s3=offsite["status"],
                deleted=result.get("retention", {}).get("local", []))
    if failed:
        hint = f"; {offsite['hint']}" if offsite.get("hint") else ""
        cli.info(f"error: {offsite['error']}; the local archive is kept: {result['archive']}{hint}")
    elif offsite["status"] == "disabled":
        cli.note(f"note: {offsite['note']}")
    if not cli.report_wanted(important=failed):
        for warning in result["warnings"]:
            cli.info(f"warning: {warning}")
    return result, 1 if failed else 0


def restore_backup(day: date, source: str | None, kind: str, confirm: bool) -> dict:
    """The plan without --confirm; with it, the restore under the backup lock, audited."""
    from lib.backup import restore  # loaded by the command that uses it: backup.py starts without it

    if not confirm:
        return restore.plan(day, source, kind)
    with locks.backup_lock(), exclusive("restore", RESTORE_CLAIM_SECONDS):
        try:
            result = restore.run(day, source, kind, meter=cli.meter)
        except ToolError as failure:
            audit.audit("failed", date=day.isoformat(), error=str(failure))
            raise
    audit.audit("ok", date=day.isoformat(), archives=[a["key"] for a in result["archives"]], aside=result["aside"])
    return result


def weekly_maintenance(dry_run: bool, timeout: float) -> tuple[list[dict], int]:
    """Every step under the lock, audited; exit 1 when any step failed. A lost store refuses the whole run
    (DESIGN §8): its cleanup and gc would judge by an empty history."""
    refuse_lost_store()
    from lib.backup import maintenance

    with locks.lock("weekly_maintenance"):
        rows = maintenance.run(dry_run, timeout)
    failed = [row["step"] for row in rows if row["status"] != "ok"]
    if not dry_run:
        audit.audit("failed" if failed else "ok", failed=failed)
    return rows, 1 if failed else 0


def archive_logs(older_than: timedelta, dry_run: bool) -> list[dict]:
    from lib.backup import log_archive

    return log_archive.archive(older_than, dry_run, progress=cli.progress)
