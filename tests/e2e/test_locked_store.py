"""Issue 16 item 8: a store locked by another writer past SQLite's busy timeout while an evolution runs.
The runner's writes and its heartbeat wait (each with a note naming the file and the holder) and the
evolution ends with its real status, not `database is locked`, not killed."""

from __future__ import annotations

import subprocess
import sys

from evolution_agents import MINIMAL, PHASES, TARGET, reply_agent
from evolution_runs import wait_for
from store_lock import StoreLock

from lib import paths
from lib.store import open_store
from tests.conftest import ROOT


def test_an_evolution_outlives_a_lock_longer_than_the_busy_timeout(tdev, git_repo, runners):
    tdev.write_config("settings", "evolution:\n  heartbeat_seconds: 0.3\n")
    started, go = tdev.base / "research-started", tdev.base / "research-go"
    waits = (f"open({str(started)!r}, 'w').close()\n"
             f"import time\nwhile not os.path.exists({str(go)!r}):\n    time.sleep(0.05)\n")
    tdev.use_agents({phase: reply_agent(tdev.base, phase, MINIMAL[phase], before=waits if phase == "research" else "")
                     for phase in PHASES})
    monitor = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "run_evolution.py"), "--target", str(git_repo / TARGET),
         "--focus", "docs", "--dry-run", "--monitor"],
        env={**tdev.env, "TDEV_STORE_BUSY_SECONDS": "0.5"}, cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        wait_for(started.exists, timeout=120)
        [record] = open_store().list_evolutions()
        runners.append(record["id"])
        stderr = paths.evolution_dir(record["id"]) / "runner.stderr"
        with StoreLock(tdev.history / "state.db") as held:
            go.touch()  # research answers: the runner must record it, under the lock
            notes = wait_for(lambda: stderr.exists() and stderr.read_text().count("is locked by") >= 2 and
                             stderr.read_text(), timeout=120)  # the phase's write and a heartbeat both wait
        assert f"state store {tdev.history / 'state.db'} is locked by pid {held.pid} (python" in notes
        stdout, err = monitor.communicate(timeout=300)
    finally:
        if monitor.poll() is None:
            monitor.kill()
    assert monitor.returncode == 0, stdout + err
    final = open_store().get_evolution(record["id"])
    assert final["status"] == "succeeded" and final["error"] is None
    assert "database is locked" not in stderr.read_text() + err and "Traceback" not in stderr.read_text()
    assert stdout.strip().splitlines()[-1] == f"{record['id']} succeeded"
