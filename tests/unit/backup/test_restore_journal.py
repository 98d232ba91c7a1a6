"""restore.recover: a restore killed midway, from its journal, is finished and loses nothing."""

from __future__ import annotations

import json
import os

from lib import paths
from lib.backup import restore


def layout(tdev, step: str) -> dict:
    """The folders as a restore killed at step left them: new data staged, previous data live or moved."""
    history = paths.history_dir()
    staging, aside = history.parent / ".history.restore-S", history.parent / "history.pre-restore-S"
    (history / "worktrees" / "evo-x").mkdir(parents=True)
    (history / "worktrees" / "evo-x" / "work.py").write_text("previous\n")
    (history / "old.txt").write_text("previous\n")
    staging.mkdir()
    (staging / "restore.json").write_text("{}")
    staged_inode = os.lstat(staging).st_ino
    if step == "exchanged":  # the two folders changed places; the previous data is at the staging path
        os.rename(history, aside)
        os.rename(staging, history)
        os.rename(aside, staging)
    elif step == "half-renamed":  # the two-rename swap, killed between its renames
        os.rename(history, aside)
    journal = {"stamp": "S", "work": str(history.parent / ".history.restore-S-work"), "units": {"history": {
        "kind": "dir", "live": str(history), "staging": str(staging), "aside": str(aside),
        "staged_inode": staged_inode, "complete": True, "step": step}}}
    restore.journal_path().write_text(json.dumps(journal))
    return {"history": history, "staging": staging, "aside": aside}


def test_killed_after_the_exchange_the_previous_data_goes_aside_and_what_stays_live_comes_back(tdev):
    where = layout(tdev, "exchanged")
    assert where["staging"] in restore.unfinished_paths()  # clean_stale and gc leave it alone
    [line] = restore.recover()
    assert "finished the restore S killed after its swap" in line
    assert (where["history"] / "restore.json").exists()
    assert (where["history"] / "worktrees" / "evo-x" / "work.py").read_text() == "previous\n"
    assert (where["aside"] / "old.txt").read_text() == "previous\n" and not where["staging"].exists()
    assert not restore.journal_path().exists()


def test_killed_between_the_two_renames_the_restored_data_is_put_in_place(tdev):
    where = layout(tdev, "half-renamed")
    restore.recover()
    assert (where["history"] / "restore.json").exists() and (where["aside"] / "old.txt").exists()
    assert (where["history"] / "worktrees" / "evo-x" / "work.py").exists()


def test_never_swapped_the_live_data_stays_and_the_staged_copy_goes(tdev):
    where = layout(tdev, "staged")
    assert restore.recover() == ["history: not swapped; the live data stays"]
    assert (where["history"] / "old.txt").exists() and not where["staging"].exists()
    assert not where["aside"].exists()
