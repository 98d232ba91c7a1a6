"""The roots a backup reads and the swap a restore makes."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from lib.backup import restore, sources


def test_nested_log_folder_is_part_of_the_history(tdev, monkeypatch):
    monkeypatch.setenv("TDEV_LOG_DIR", str(tdev.history / "logs"))
    units = sources.units()
    assert [u.name for u in units] == ["history", "config", "mcp"]
    locate = sources.locator()
    unit, relative = locate("logs/runner.log")
    assert (unit.name, relative) == ("history", "logs/runner.log")
    assert locate("mcp/claude.mcp.json")[0].is_file
    with pytest.raises(LookupError):
        locate("elsewhere/file")


def test_swap_without_rename_exchange_still_keeps_the_old_data(tdev, monkeypatch):
    monkeypatch.setattr(restore, "_EXCHANGE", None)
    (tdev.history / "keep").mkdir(parents=True)
    (tdev.history / "keep" / "old.txt").write_text("old")
    (tdev.history / "state.db-wal").write_text("stale wal")
    staging = restore.Staging("20240115T000000Z")
    staging.prepare()
    staging.sink("history/state.db").write_text("new db")
    swapped = staging.swap(complete=False)
    staging.discard()
    assert (tdev.history / "state.db").read_text() == "new db"
    assert (tdev.history / "keep" / "old.txt").read_text() == "old"
    assert not (tdev.history / "state.db-wal").exists()  # never pair a stale WAL with a restored database
    assert Path(swapped["history"]["aside"], "state.db-wal").read_text() == "stale wal"


def test_rename_exchange_swaps_two_folders(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "x").write_text("a")
    (second / "x").write_text("b")
    if not restore.swap_atomically(first, second):
        pytest.skip("no renameat2 here")
    assert (first / "x").read_text() == "b" and (second / "x").read_text() == "a"


def test_two_restores_in_one_second_get_their_own_names(tdev):
    (tdev.history / "x").mkdir(parents=True)
    first = restore.Staging("20240115T000000Z")
    restore.Staging("20240115T000000Z").aside(first.history).mkdir()
    second = restore.Staging("20240115T000000Z")
    assert second.stamp == "20240115T000000Z-2" and not second.aside(second.history).exists()


@pytest.mark.parametrize("atomic", [True, False])
def test_a_failure_right_after_the_swap_never_discards_the_previous_data(tdev, monkeypatch, atomic):
    if atomic and restore._EXCHANGE is None:
        pytest.skip("no renameat2 here")
    if not atomic:
        monkeypatch.setattr(restore, "_EXCHANGE", None)
    (tdev.history / "old.txt").parent.mkdir(parents=True)
    (tdev.history / "old.txt").write_text("previous")
    staging = restore.Staging("20240115T000000Z")
    staging.prepare()
    staging.sink("history/new.txt").write_text("restored")
    real_rename = os.rename

    def full_disk_on_the_aside(source, target):
        if str(target).endswith(".pre-restore-20240115T000000Z"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_rename(source, target)

    monkeypatch.setattr(restore.os, "rename", full_disk_on_the_aside)
    with pytest.raises(OSError):
        staging.swap(complete=False)
    staging.discard()
    if atomic:  # swapped: the restored data is live, the previous data waits at the staging path
        assert (tdev.history / "new.txt").read_text() == "restored"
        assert (staging.staging(staging.history) / "old.txt").read_text() == "previous"
    else:  # nothing moved: live data as it was, the staging gone
        assert (tdev.history / "old.txt").read_text() == "previous"
        assert not staging.staging(staging.history).exists()
