"""cleanup.py --evolution ends an agent process found by its plan only when lib/procs.identify still finds that
same process (its pid and start time) when the plan is carried out."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from lib import procs
from lib.errors import ToolError
from lib.ops import cleanup

EVOLUTION = "evo-20240115100000-abcdef"


@pytest.fixture
def agent():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"],
                               env={**os.environ, "TDEV_EVOLUTION_ID": EVOLUTION})
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


def test_an_agent_is_ended_only_while_it_is_the_process_the_plan_found(agent):
    started = procs.start_stamp(agent.pid)
    an_hour_before = (datetime.fromisoformat(started) - timedelta(hours=1)).isoformat()
    with pytest.raises(ToolError, match="not ended: .* cannot prove it is the same process"):
        cleanup._terminate(EVOLUTION, {"pid": agent.pid, "started": an_hour_before})
    assert agent.poll() is None
    cleanup._terminate("evo-20240115100000-000000", {"pid": agent.pid, "started": started})  # not that one's
    assert agent.poll() is None
    cleanup._terminate(EVOLUTION, {"pid": agent.pid, "started": started})
    assert agent.wait(10) is not None
