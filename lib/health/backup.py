"""Backup checks: age of the newest daily backup (local and off-site), the last verify; after a
recovery, the verify itself and that no lock is still held."""

from __future__ import annotations

from lib import timeparse
from lib.archives import repository
from lib.backup import verify
from lib.checks import worst, worst_status
from lib.errors import ToolError
from lib.health import check
from lib.locks import lock_files, lock_held, lock_name
from lib.store import open_store

WARNING_HOURS = 26
CRITICAL_HOURS = 50


@check("backup_age", "backup")
def backup_age(context: dict) -> tuple[str, str]:
    """The newest daily (or full) backup, locally and off-site when a bucket is configured: warning past
    26 h, critical past 50 h (none yet is fine for the first 26 h after init_evolution.py)."""
    installed = _installed_hours_ago()
    grace = installed is not None and installed <= WARNING_HOURS
    status, summary = _age("", repository.list_local(), f"in {repository.local_dir()}", grace, installed)
    offsite = repository.offsite(True)
    if not offsite.wanted:
        return status, f"{summary}; no off-site copy ({offsite.reason})"
    if not offsite.ready:
        remote = ("ok", f"off-site: none due yet ({offsite.reason})") if grace else \
            ("warning", f"off-site copies cannot be checked: {offsite.reason}; if none is wanted, set "
                        "aws.backup_bucket: null in settings.yaml")
    else:
        try:
            remote = _age("off-site: ", repository.list_s3(offsite.bucket), f"in s3://{offsite.bucket}/", grace,
                          installed)
        except ToolError as failure:
            remote = ("unknown", f"off-site copies cannot be listed: {failure}")
    return worst_status([status, remote[0]]), f"{summary}; {remote[1]}"


def _age(label: str, backups: list, where: str, grace: bool, installed: float | None) -> tuple[str, str]:
    """The status of the newest daily or full backup of a place, and a line saying why."""
    newest = repository.newest(backups, repository.RESTORABLE)
    if newest is None:
        hint = f"{label}no backup yet {where} (python scripts/backup.py --daily)"
        if grace:
            return "ok", f"{hint}; installed {installed:.1f} h ago, so none is due yet"
        return "warning", hint
    hours = (timeparse.utcnow() - newest.created).total_seconds() / 3600
    status = "critical" if hours > CRITICAL_HOURS else "warning" if hours > WARNING_HOURS else "ok"
    return status, f"{label}newest {newest.kind} backup is {hours:.1f} h old ({newest.key})"


def _installed_hours_ago() -> float | None:
    """Hours since init_evolution.py set this installation up (store meta installed_at)."""

    store = open_store()
    try:
        installed = timeparse.from_iso(store.get_meta("installed_at")) if store.exists else None
    finally:
        store.close()
    return (timeparse.utcnow() - installed).total_seconds() / 3600 if installed else None


@check("last_verify", "backup")
def last_verify(context: dict) -> tuple[str, str]:
    """The outcome of the last verify_restore.py (kept in the store)."""

    store = open_store()
    try:
        outcome = store.get_meta("last-verify") if store.exists else None
    finally:
        store.close()
    if not outcome:
        return "ok", "no verify has run yet"
    status = outcome.get("status", "unknown")
    return status, f"{status} at {timeparse.local(outcome.get('time'))}: {outcome.get('summary', '')}"


@check("restore_verify", "backup", groups=("post-recovery",), timeout=600)
def restore_verify(context: dict) -> tuple[str, str]:
    """verify_restore.py against the last restore, as part of health_check.py --post-recovery."""

    results, target = verify.run(None)
    status = worst(results)
    problems = [f"{r.name}: {r.summary}" for r in results if r.status != "ok"]
    return status, "; ".join(problems) if problems else f"{len(results)} checks ok ({target})"


@check("recovery_locks", "backup", groups=("post-recovery",))
def recovery_locks(context: dict) -> tuple[str, str]:
    """After a recovery no lock may be held at all: a holder is a job from before it, still running."""

    held = [f"{lock_name(path)} ({path.read_text(encoding='utf-8', errors='replace').strip() or 'holder unknown'})"
            for path in lock_files() if lock_held(path)]
    if held:
        return "warning", f"locks still held after the recovery: {', '.join(held)}"
    return "ok", "no lock is held"
