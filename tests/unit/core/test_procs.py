"""lib/procs.identify: a stored pid is taken for the recorded process only on the same host, with the same
start time and a command line (or environment) naming what was started."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lib import procs

WORKER = ("lib.evolution.worker", "evo-20240115100000-abcdef")


@pytest.fixture
def worker_like():
    """A live process whose command line names the runner of WORKER's evolution, and its start stamp."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", *WORKER],
                               env={**os.environ, "TDEV_EVOLUTION_ID": "evo-env"})
    wait_for_exec(process.pid, WORKER[-1])
    yield process, procs.start_stamp(process.pid)
    process.kill()
    process.wait()


def wait_for_exec(pid: int, word: str) -> None:
    """Until the child has exec'd (its command line names word): before, /proc shows the forked parent's."""
    deadline = time.monotonic() + 60
    while word.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline, f"pid {pid} never ran its command"
        time.sleep(0.01)


def earlier(stamp: str, **delta) -> str:
    return (datetime.fromisoformat(stamp) - timedelta(**delta)).isoformat()


def test_the_recorded_process_is_proven(worker_like):
    process, started = worker_like
    here = socket.gethostname()
    assert procs.identify(process.pid, started=started, host=here, argv=WORKER)[0] == procs.ALIVE
    assert procs.identify(process.pid, started=None, host=None, argv=WORKER)[0] == procs.ALIVE  # a record from before
    assert procs.identify(process.pid, started=started, host=here, env=("TDEV_EVOLUTION_ID", "evo-env"))[0] == \
        procs.ALIVE
    assert procs.identify(process.pid, started=started, host=here)[0] == procs.ALIVE  # pid and start time alone


def test_another_program_a_look_alike_and_another_host_are_not(worker_like):
    process, started = worker_like
    state, detail = procs.identify(process.pid, started=started, host=None, argv=("lib.evolution.worker", "evo-other"),
                                   what="runner")
    assert state == procs.OTHER and f"pid {process.pid} is now" in detail and "not the runner" in detail
    state, detail = procs.identify(process.pid, started=earlier(started, hours=1), host=None, argv=WORKER)
    assert state == procs.DOUBT and "cannot prove it is the same process" in detail
    assert procs.identify(process.pid, started=earlier(started, hours=1), host=None)[0] == procs.OTHER
    assert procs.identify(process.pid, started=earlier(started, seconds=0.5), host=None, argv=WORKER)[0] == procs.ALIVE
    assert procs.identify(process.pid, started=started, host="elsewhere", argv=WORKER)[0] == procs.REMOTE
    assert procs.identify(None, started=None, host=None)[0] == procs.UNKNOWN


def test_a_process_in_its_exit_reads_empty_and_is_never_taken_for_another_program(worker_like, monkeypatch):
    """Between its exit and its zombie state a process shows an empty command line and environment."""
    import psutil

    process, started = worker_like
    monkeypatch.setattr(psutil.Process, "cmdline", lambda self: [])
    monkeypatch.setattr(psutil.Process, "environ", lambda self: {})
    assert procs.identify(process.pid, started=started, host=None, argv=WORKER,
                          env=("TDEV_EVOLUTION_ID", "evo-env"))[0] == procs.ALIVE  # its start time still proves it
    assert procs.identify(process.pid, started=earlier(started, hours=1), host=None, argv=WORKER)[0] == \
        procs.OTHER  # with nothing to read, a start time that differs decides alone


def test_a_process_that_exits_while_it_is_read_is_gone_not_a_crash(worker_like, monkeypatch):
    import psutil

    process, started = worker_like

    def vanished(self):
        raise psutil.ZombieProcess(self.pid)

    monkeypatch.setattr(psutil.Process, "cmdline", vanished)
    assert procs.identify(process.pid, started=started, host=None, argv=WORKER)[0] == procs.GONE


def test_a_pid_that_ended_is_gone():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    started = procs.start_stamp(process.pid)
    process.wait()
    assert procs.identify(process.pid, started=started, host=None, argv=WORKER)[0] == procs.GONE
    assert not procs.alive(process.pid) and procs.start_stamp(process.pid) is None
    assert procs.alive(os.getpid()) and not procs.alive(None)
