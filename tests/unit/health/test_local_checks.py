"""lib/health/local_checks.py: config, store, disk, stuck evolutions and stale locks."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from evolution_seed import add_evolution, stamp

from lib import config, paths
from lib.health import local_checks as local
from lib.store import open_store

OLD = 2 * 86400


def age(path, seconds: float) -> None:
    moment = time.time() - seconds
    os.utime(path, (moment, moment))


def test_config_ok_then_a_broken_file_is_critical(tdev):
    assert local.config_files({})[0] == "ok"
    tdev.write_config("gates", "gates:\n  docstring: {threshold: high, direction: min}\n")
    status, summary = local.config_files({})
    assert status == "critical" and "gates.yaml" in summary and "threshold" in summary


def test_store_missing_is_a_warning_then_ok(tdev):
    status, summary = local.store({})
    assert status == "warning" and "init_evolution.py" in summary
    add_evolution(open_store(create=True))
    status, summary = local.store({})
    assert status == "ok" and "1 evolutions" in summary


def test_store_that_is_not_a_database_is_critical(tdev):
    paths.history_dir().mkdir(parents=True)
    (paths.history_dir() / "state.db").write_bytes(b"this is not sqlite" * 100)
    status, summary = local.store({})
    assert status == "critical" and "restore" in summary


def test_disk_below_the_minimum_is_critical(tdev):
    assert local.disk({})[0] == "ok"
    tdev.write_config("settings", "health:\n  min_free_disk_gb: 100000000\n")
    config.settings.cache_clear()
    status, summary = local.disk({})
    assert status == "critical" and "below 1e+08 GB" in summary and "cleanup.py" in summary


def test_stuck_evolution_is_critical(tdev):
    store = open_store(create=True)
    add_evolution(store, status="running", finished_at=None, pid=2 ** 22 + 1,
                  heartbeat_at=stamp(datetime.now(UTC)))
    status, summary = local.stuck_evolutions({})
    assert status == "critical" and "process-gone" in summary


def test_locks_fresh_released_died_and_held(tdev):
    locks = paths.locks_dir()
    locks.mkdir(parents=True)
    (locks / "fresh.lock").write_text("pid 1 since now\n")
    released = locks / "weekly.lock"
    released.write_text("")
    age(released, OLD)
    assert local.stale_locks({}) == ("ok", f"no stale locks (2 lock file(s) in {locks})")

    died = locks / "backup.lock"
    died.write_text("pid 999999 since 2024-01-01T02:00:00+00:00\n")
    age(died, OLD)
    status, summary = local.stale_locks({})
    assert status == "warning" and "backup left" in summary and "by a run that died" in summary

    died.unlink()
    held = locks / "gc.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time\n"
        f"h = open({str(held)!r}, 'a+'); fcntl.flock(h, fcntl.LOCK_EX); h.write('pid x since then'); h.flush()\n"
        "print('held', flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        age(held, OLD)
        status, summary = local.stale_locks({})
        assert status == "warning" and "gc held for 2d00h" in summary and "still running?" in summary
    finally:
        holder.kill()
        holder.wait()
    with open(held, "a+") as handle:  # the probe never left the lock taken
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


@pytest.mark.parametrize("check", ["config", "store", "disk", "stuck_evolutions", "stale_locks"])
def test_registered_in_the_basic_group(check):
    from lib import health

    item = health.load_all()[check]
    assert "basic" in item.groups and item.area == "local"
