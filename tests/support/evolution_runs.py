"""Drive real evolutions from tests: command agents for a phase, and waiting on a condition (never on time)."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path


def use_command_agent(tdev, phase: str, body: str) -> Path:
    """Replace one phase's agent by a Python command agent whose main body is given."""
    script = tdev.base / f"agent_{phase}.py"
    script.write_text("import json, os, sys, time\npayload = json.load(sys.stdin)\n" + textwrap.dedent(body))
    tdev.use_agents({phase: [sys.executable, script]})
    return script


def wait_for(predicate, timeout: float = 30.0):
    """The first true value of predicate(), polled until the timeout (a bound for a hung test, not a pace)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")
