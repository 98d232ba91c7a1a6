"""A locked SQLite store: writers wait with a note naming the file and its holder, never `database is locked`."""

from __future__ import annotations

import threading
import time

import pytest
from store_lock import StoreLock

from lib.errors import ExternalError
from lib.store import open_store


def wait_for(condition, what: str, limit: float = 120):
    deadline = time.monotonic() + limit
    while not (found := condition()):
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)
    return found


def test_a_writer_waits_out_a_lock_longer_than_the_busy_timeout(tdev, monkeypatch, capfd):
    monkeypatch.setenv("TDEV_STORE_BUSY_SECONDS", "0.2")
    store = open_store(create=True)
    written = []
    with StoreLock(tdev.history / "state.db") as held:
        writer = threading.Thread(target=lambda: written.append(store.set_meta("k", 1)))
        writer.start()
        seen: list[str] = []

        def noted() -> str | None:
            seen.append(capfd.readouterr().err)
            return "".join(seen) if "is locked by" in "".join(seen) else None

        note = wait_for(noted, "the note on stderr")
        assert f"state store {tdev.history / 'state.db'} is locked by pid {held.pid} (python" in note
        assert writer.is_alive()
    writer.join(timeout=120)
    assert written == [None] and store.get_meta("k") == 1
    store.close()


def test_past_its_wait_a_writer_fails_with_one_line_naming_the_holder(tdev, monkeypatch):
    monkeypatch.setenv("TDEV_STORE_BUSY_SECONDS", "0.1")
    monkeypatch.setenv("TDEV_STORE_LOCK_WAIT", "0.3")
    store = open_store(create=True)
    with StoreLock(tdev.history / "state.db") as held, pytest.raises(ExternalError) as gave_up:
        store.set_meta("k", 1)
    assert "stayed locked for" in gave_up.value.message and f"pid {held.pid}" in gave_up.value.message
    assert store.get_meta("k") is None
    store.close()
