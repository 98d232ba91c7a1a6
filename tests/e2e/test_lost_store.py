"""DESIGN §8: with the store lost while a history exists, no command starts an empty one; each names restore.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from backup_helpers import local_only, ok, seed

from lib.store import open_store

MARCH_1 = datetime(2030, 3, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def lost(tdev, utc):
    """A seeded installation with a daily backup, whose store file is then deleted."""
    seed(tdev)
    local_only(tdev)
    tdev.pin_clock(MARCH_1)
    ok(tdev.run("backup.py", "--daily", "--json"))
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (tdev.history / name).unlink(missing_ok=True)
    return tdev


@pytest.mark.parametrize("command", [
    ("update_patterns.py",),
    ("security_audit.py", "--full", "--notify"),
    ("weekly_maintenance.py",),
    ("init_evolution.py",),
    ("run_evolution.py", "--dry-run", "--cycles", "1"),
], ids=lambda command: command[0])
def test_no_command_starts_an_empty_store_over_a_lost_one(lost, git_repo, command):
    args = [*command[1:], "--target", str(git_repo / "packages/agents")] if command[0] == "run_evolution.py" \
        else command[1:]
    refused = lost.run(command[0], *args)
    assert refused.returncode in (1, 3), refused
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, refused.stderr
    assert "state store is missing while the history shows it existed" in errors[0]
    assert "restore it: python scripts/restore.py --date 2030-03-01 --confirm" in errors[0]
    assert "init_evolution" not in refused.stderr and "Traceback" not in refused.stderr
    assert not (lost.history / "state.db").exists()


def test_a_read_command_names_restore_not_init_and_the_restore_brings_the_store_back(lost):
    shown = lost.run("show_evolution_history.py", "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout) == []
    assert "restore it: python scripts/restore.py --date 2030-03-01" in shown.stderr
    assert "init_evolution" not in shown.stderr
    assert not (lost.history / "state.db").exists()

    ok(lost.run("restore.py", "--date", "2030-03-01", "--confirm"))
    restored = open_store()
    try:
        assert restored.exists and restored.counts()["evolutions"] == 2
    finally:
        restored.close()


def test_without_a_history_init_still_creates_the_store(tdev):
    ok(tdev.run("init_evolution.py"))
    assert (tdev.history / "state.db").exists()
