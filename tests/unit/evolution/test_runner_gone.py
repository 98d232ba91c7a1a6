"""lib/evolution/stuck.runner_gone: when cleanup.py and run_evolution.py --force may treat an active evolution as
dead. A runner that is alive, in doubt, or starting or remote with a fresh heartbeat refuses (Conflict)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from lib import procs
from lib.errors import Conflict
from lib.evolution import stuck


def record(**fields) -> dict:
    return {"id": "evo-20260101000000-abc123", "status": "running", "host": socket.gethostname(), "pid": None,
            "started_at": datetime.now(UTC).isoformat(), **fields}


def ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


def test_a_runner_whose_process_ended_is_gone(tdev):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    started = procs.start_stamp(ended.pid)
    ended.wait()
    assert stuck.runner_gone(record(pid=ended.pid, pid_started_at=started)) == f"runner process {ended.pid} is gone"


def test_a_process_that_is_not_the_runner_is_not_taken_for_it(tdev, processes):
    other = processes([sys.executable, "-c", "import time; time.sleep(600)"])
    detail = stuck.runner_gone(record(pid=other.pid, pid_started_at=procs.start_stamp(other.pid)))
    assert str(other.pid) in detail


def test_a_starting_runner_with_a_fresh_start_refuses(tdev):
    with pytest.raises(Conflict, match="is starting"):
        stuck.runner_gone(record(status="pending"))


def test_a_remote_runner_refuses_while_its_heartbeat_is_fresh_and_is_gone_once_silent(tdev):
    with pytest.raises(Conflict, match="runs on host elsewhere"):
        stuck.runner_gone(record(host="elsewhere", pid=4242, heartbeat_at=ago(1)))
    silent = stuck.runner_gone(record(host="elsewhere", pid=4242, heartbeat_at=ago(3600)))
    assert re.fullmatch(r"runner runs on host elsewhere, no heartbeat for 36\d\ds", silent)  # a slow machine adds

