"""Open the configured state store (TDEV_STATE_BACKEND: sqlite by default, or dynamodb)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from lib.errors import ConfigError, ToolError
from lib.store.base import ACTIVE, ENDED_BADLY, FINAL, Store, StoreLocked, new_id

__all__ = ["ACTIVE", "ENDED_BADLY", "FINAL", "Store", "new_id", "open_store", "backend_name", "exclusive",
           "StoreLost", "StoreLocked", "refuse_lost_store"]


def backend_name() -> str:
    return os.environ.get("TDEV_STATE_BACKEND", "sqlite").strip().lower() or "sqlite"


class StoreLost(ToolError):
    """The store is missing while the history shows there was one: only restore.py may bring it back."""


def _lost_store() -> str | None:
    from lib.backup import jobs  # late: the backup package reads the store through this module

    return jobs.lost_store()


def _store_exists() -> bool:
    from lib.backup import sources

    return sources.store_exists()


def _restore_hint() -> str:
    from lib.backup import repository

    return f"restore it: {repository.restore_command()}"


def refuse_lost_store() -> None:
    """DESIGN §8: never start an empty store over a lost one (a cron job would hide the loss, a backup
    would archive the empty store and retention would drop the last good one)."""
    if _store_exists():  # first: the history's evidence is only read for a missing store
        return
    lost = _lost_store()
    if lost:
        raise StoreLost(f"{lost}; this command would start an empty one", _restore_hint())


def open_store(create: bool = False, restoring: bool = False) -> Store:
    """The store; create=False answers reads with an empty history when there is none yet. create=True
    refuses a lost store (refuse_lost_store) unless restoring, which brings it back."""
    backend = backend_name()
    if backend not in ("sqlite", "dynamodb"):
        raise ConfigError(f"TDEV_STATE_BACKEND={backend!r} is not a backend", "use sqlite or dynamodb")
    if create and not restoring:
        refuse_lost_store()
    if backend == "sqlite":  # the backend loads on open: the DynamoDB one pulls in boto3
        from lib.store.sqlite import SQLiteStore

        lost = None if create or SQLiteStore.file_exists() else _lost_store()
        return SQLiteStore.open(create=create, missing_note=f"{lost}; {_restore_hint()}" if lost else None)
    from lib.store.dynamodb import DynamoDBStore

    return DynamoDBStore.open(create=create)


@contextlib.contextmanager
def exclusive(name: str, seconds: float) -> Iterator[None]:
    """One `name` (a restore) at a time across the hosts that share the store, or Conflict naming the holder.
    A SQLite store is one host's, where the caller's flock already serves: it is not even opened (a restore
    replaces its file)."""
    if backend_name() == "sqlite":
        yield
        return
    store = open_store()
    try:
        with store.exclusive(name, seconds):
            yield
    finally:
        store.close()
