"""Drive real evolutions from tests: command agents for a phase, a runner that hangs or dies, and waiting
on a condition (never on time)."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

from lib import procs
from lib.evolution import lifecycle
from lib.store import open_store


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


def start_hanging(tdev, target: str, runners: list, *args: str) -> dict:
    """A detached evolution whose research agent hangs: its runner alive, its record running, its task too.
    Its id joins runners (the `runners` fixture ends what is left)."""
    use_command_agent(tdev, "research", "time.sleep(300)\n")
    started = tdev.run("run_evolution.py", "--target", target, *args)
    assert started.returncode == 0, started.stderr
    evolution_id = started.stdout.split()[0]
    runners.append(evolution_id)
    wait_for(lambda: open_store().list_tasks(evolution_id=evolution_id, statuses=("running",)))
    return open_store().get_evolution(evolution_id)


def kill_runner(record: dict) -> None:
    """kill -9 of the runner's process group, as an OOM killer or a closed session would."""
    os.killpg(record["pid"], signal.SIGKILL)
    wait_for(lambda: not procs.alive(record["pid"]))


def end_runners(evolution_ids: list[str]) -> None:
    """Whatever a test's outcome, end the process group of each runner still proven alive."""
    for evolution_id in evolution_ids:
        record = open_store().get_evolution(evolution_id)
        if record and lifecycle.runner_state(record)[0] == procs.ALIVE:
            os.killpg(record["pid"], signal.SIGKILL)
