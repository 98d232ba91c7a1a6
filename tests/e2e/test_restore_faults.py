"""restore.py under faults: operational state stays live (DESIGN §9), a killed restore loses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from backup_helpers import local_only, ok, seed
from evolution_runs import wait_for

from lib.backup import restore
from tests.conftest import ROOT

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


def _exchange_works(folder) -> bool:
    first, second = folder / "exchange-a", folder / "exchange-b"
    first.mkdir()
    second.mkdir()
    return restore.swap_atomically(first, second)


@pytest.mark.parametrize("then", ["restore.py", "verify_restore.py"])
@pytest.mark.parametrize("step", ["exchanged", "swapped"])
def test_a_restore_killed_after_its_swap_is_finished_by_the_next_command_and_nothing_is_lost(
        backed_up, tmp_path, step, then):
    if step == "exchanged" and not _exchange_works(tmp_path):
        pytest.skip("this filesystem has no RENAME_EXCHANGE: the swap is two renames")
    history = backed_up.history
    made_later = history / "evo-20300301030000-abcdef" / "after-the-backup.txt"  # only the live history has it
    made_later.parent.mkdir()
    made_later.write_text("work done after the backup\n")
    in_worktree = history / "worktrees" / "evo-live" / "work.py"  # never in a backup, always kept live
    in_worktree.parent.mkdir(parents=True)
    in_worktree.write_text("x = 1\n")
    journal = backed_up.base / f".{history.name}.restore.journal"

    killed = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "restore.py"), "--date", "2030-03-01",
                               "--confirm"], env={**backed_up.env, restore.FAULT_PAUSE_ENV: f"restore-{step}"},
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: journal.exists() and json.loads(journal.read_text())["units"]["history"]["step"] == step,
                 timeout=120)
    finally:
        killed.kill()
        killed.wait(timeout=60)

    if then == "restore.py":
        again = json.loads(ok(backed_up.run("restore.py", "--date", "2030-03-01", "--confirm", "--json")))
        assert any("finished the restore" in line for line in again["recovered"]), again
        assert "OK" in ok(backed_up.run("verify_restore.py")).splitlines()[0]
    else:
        verified = backed_up.run("verify_restore.py", "--json")
        assert verified.returncode == 1, verified.stdout + verified.stderr  # WARNING: it had to finish a restore
        checks = {check["name"]: check for check in json.loads(verified.stdout)["checks"]}
        assert "finished the restore" in checks["journal"]["summary"]
        assert all(check["status"] == "ok" for name, check in checks.items() if name != "journal"), checks

    assert not journal.exists()
    assert in_worktree.read_text() == "x = 1\n"
    assert not list(backed_up.base.glob(f".{history.name}.restore-*")), "a hidden staging folder was left"
    kept = [path / made_later.relative_to(history) for path in backed_up.base.glob(f"{history.name}.pre-restore-*")]
    assert any(path.is_file() and path.read_text() == "work done after the backup\n" for path in kept), kept


def test_a_backup_cannot_run_while_a_restore_swaps_the_history(backed_up):
    journal = backed_up.base / f".{backed_up.history.name}.restore.journal"
    paused = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "restore.py"), "--date", "2030-03-01",
                               "--confirm"], env={**backed_up.env, restore.FAULT_PAUSE_ENV: "restore-swapped"},
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: journal.exists() and json.loads(journal.read_text())["units"]["history"]["step"] == "swapped",
                 timeout=120)
        refused = backed_up.run("backup.py", "--daily")
    finally:
        paused.kill()
        paused.wait(timeout=60)
    assert refused.returncode == 1 and refused.stderr.startswith("error: backup is already running (pid "), refused
    assert f".{backed_up.history.name}.backup.lock" in refused.stderr
