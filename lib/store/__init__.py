"""Open the configured state store (TDEV_STATE_BACKEND: sqlite by default, or dynamodb)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from lib.errors import ConfigError
from lib.store.base import ACTIVE, ENDED_BADLY, FINAL, Store, new_id

__all__ = ["ACTIVE", "ENDED_BADLY", "FINAL", "Store", "new_id", "open_store", "backend_name", "exclusive"]


def backend_name() -> str:
    return os.environ.get("TDEV_STATE_BACKEND", "sqlite").strip().lower() or "sqlite"


def open_store(create: bool = False) -> Store:
    """The store; create=False answers reads with an empty history when there is none yet."""
    backend = backend_name()
    if backend == "sqlite":  # the backend loads on open: the DynamoDB one pulls in boto3
        from lib.store.sqlite import SQLiteStore

        return SQLiteStore.open(create=create)
    if backend == "dynamodb":
        from lib.store.dynamodb import DynamoDBStore

        return DynamoDBStore.open(create=create)
    raise ConfigError(f"TDEV_STATE_BACKEND={backend!r} is not a backend", "use sqlite or dynamodb")


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
