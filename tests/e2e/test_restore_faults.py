"""restore.py under faults: operational state stays live (DESIGN §9), a killed restore loses nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from backup_helpers import local_only, ok, seed

MARCH_1 = datetime(2030, 3, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def backed_up(tdev, utc):
    """A seeded installation with an open page in notify-state.json, then a full backup of it."""
    seed(tdev)
    local_only(tdev)
    (tdev.history / "notify-state.json").write_text(json.dumps({"health_check": {"status": "critical"}}))
    tdev.pin_clock(MARCH_1)
    ok(tdev.run("backup.py", "--full", "--json"))
    return tdev


@pytest.mark.parametrize("kind", ["full", "auto"])
def test_a_restore_keeps_the_live_notify_state(backed_up, kind):
    live = json.dumps({"health_check": {"status": "ok"}})
    (backed_up.history / "notify-state.json").write_text(live)
    ok(backed_up.run("restore.py", "--date", "2030-03-01", "--kind", kind, "--confirm"))
    assert (backed_up.history / "notify-state.json").read_text() == live
    assert "OK" in ok(backed_up.run("verify_restore.py")).splitlines()[0]


def test_a_restore_never_brings_back_an_old_notify_state(backed_up):
    (backed_up.history / "notify-state.json").unlink()
    ok(backed_up.run("restore.py", "--date", "2030-03-01", "--confirm"))
    assert not (backed_up.history / "notify-state.json").exists()
    assert "OK" in ok(backed_up.run("verify_restore.py")).splitlines()[0]
