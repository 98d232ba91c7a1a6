"""Open the configured state store (TDEV_STATE_BACKEND: sqlite by default, or dynamodb)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from lib.errors import ConfigError
from lib.statuses import ACTIVE, ENDED_BADLY, FINAL
from lib.store.base import Store, StoreLocked, backend_name, new_id
from lib.store.lost import StoreLost, lost_store, refuse_creating_store, refuse_lost_store, restore_hint

__all__ = ["ACTIVE", "ENDED_BADLY", "FINAL", "Store", "new_id", "open_store", "backend_name", "exclusive",
           "StoreLost", "StoreLocked", "lost_store", "refuse_lost_store", "restore_hint"]


def open_store(create: bool = False, restoring: bool = False) -> Store:
    """The store; create=False answers reads with an empty history when there is none yet. create=True
    refuses to make a store over a lost one (refuse_creating_store, asked by each backend only when it would
    make one) unless restoring, which brings it back."""
    backend = backend_name()
    if backend not in ("sqlite", "dynamodb"):
        raise ConfigError(f"TDEV_STATE_BACKEND={backend!r} is not a backend", "use sqlite or dynamodb")
    before_create = None if restoring else refuse_creating_store
    if backend == "sqlite":  # the backend loads on open: the DynamoDB one pulls in boto3
        from lib.store.sqlite import SQLiteStore

        lost = None if create or SQLiteStore.file_exists() else lost_store()
        return SQLiteStore.open(create=create, missing_note=f"{lost}; {restore_hint()}" if lost else None,
                                before_create=before_create)
    from lib.store.dynamodb import DynamoDBStore

    return DynamoDBStore.open(create=create, before_create=before_create)


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
