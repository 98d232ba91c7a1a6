"""Non-blocking flocks for cron jobs: a second run of the same job exits at once, saying who holds it."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from lib import paths
from lib.errors import Conflict
from lib.timeparse import iso


@contextlib.contextmanager
def lock(name: str, path: Path | None = None) -> Iterator[Path]:
    """A non-blocking flock for cron jobs: a second run exits at once with a clear message.
    path: the lock file, when not locks/<name>.lock in the history."""
    path = path or paths.locks_dir() / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise Conflict(f"{name} is already running ({holder})", f"wait for it to finish; lock {path}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {iso()}\n")
        handle.flush()
        try:
            yield path
        finally:  # an empty file marks a clean release; a holder line left behind means the run died
            handle.seek(0)
            handle.truncate()
    finally:
        handle.close()


def lock_held(path: Path) -> bool:
    """Whether a process holds the flock on path (probed with a shared lock, released at once)."""
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def backup_lock_path() -> Path:
    """Beside the history, not in it: a restore swaps the history folder, and a lock file inside would go
    aside with it (a backup could then run during the restore)."""
    history = paths.history_dir()
    return history.parent / f".{history.name}.backup.lock"


def backup_lock() -> contextlib.AbstractContextManager[Path]:
    """The lock of backups, restores and a killed restore's recovery."""
    return lock("backup", backup_lock_path())


def lock_files() -> list[Path]:
    """Every cron lock file there is: locks/*.lock in the history, and the backup lock beside it."""
    folder = paths.locks_dir()
    found = sorted(folder.glob("*.lock")) if folder.is_dir() else []
    return [*found, backup_lock_path()] if backup_lock_path().exists() else found


def lock_name(path: Path) -> str:
    """The job a lock file is for."""
    return "backup" if path == backup_lock_path() else path.stem
