"""DynamoDB writes in moto are not atomic under concurrent requests: its threaded server can run two
conditional updates of one item at once, and both pass their condition (real DynamoDB serialises writes
to an item). The store's races (two operators taking one evolution, two fillers starting one) are only
testable against atomic writes, so `enable()` serialises moto's DynamoDB writes in this process, where the
tests' ThreadedMotoServer runs."""

from __future__ import annotations

import functools
import threading

WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_lock = threading.RLock()


def enable() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    for name in WRITES:
        method = getattr(DynamoDBBackend, name)
        if getattr(method, "serialised", False):
            continue

        @functools.wraps(method)
        def serialised(self, *args, _method=method, **kwargs):
            with _lock:
                return _method(self, *args, **kwargs)

        serialised.serialised = True
        setattr(DynamoDBBackend, name, serialised)
