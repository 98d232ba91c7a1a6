"""Evolution lifecycle: create, start detached, follow, stop gracefully or by force."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from lib import config, paths
from lib.adapters import gitops
from lib.errors import Conflict, UsageError
from lib.quality.measure import FOCUS_SCORES
from lib.store import ACTIVE, FINAL, Store, new_id
from lib.timeparse import iso

FOCUSES = tuple(FOCUS_SCORES)


def defaults(target: str | None, cycles: int | None, focus: str | None) -> tuple[str, int, str]:
    """Flags first, then EVOLUTION_TARGET/CYCLES/FOCUS, then settings; MAX_CYCLES caps the cycles."""
    target = target or os.environ.get("EVOLUTION_TARGET") or config.settings()["evolution"]["default_target"]
    focus = (focus or os.environ.get("EVOLUTION_FOCUS") or "quality").strip()
    if focus not in FOCUSES:
        raise UsageError(f"unknown focus {focus!r}", f"use one of: {', '.join(FOCUSES)}")
    if cycles is None:
        raw = os.environ.get("EVOLUTION_CYCLES", "1").strip() or "1"
        if not raw.isdigit():
            raise UsageError(f"EVOLUTION_CYCLES={raw!r} is not a whole number")
        cycles = int(raw)
    if cycles < 1:
        raise UsageError(f"--cycles must be 1 or more, got {cycles}")
    cap = os.environ.get("MAX_CYCLES", "").strip()
    if cap:
        if not cap.isdigit() or int(cap) < 1:
            raise UsageError(f"MAX_CYCLES={cap!r} is not a positive whole number")
        cycles = min(cycles, int(cap))
    config.phase_timeout()  # a bad TIMEOUT_SECONDS is refused before anything starts
    return target, cycles, focus


def resolve_target(target: str) -> Path:
    """An absolute path inside a git repository (NotFound otherwise)."""
    path = Path(target).expanduser().resolve()
    gitops.repo_root(path)
    return path


def create(store: Store, target: Path, focus: str, cycles: int, dry_run: bool) -> dict:
    """A pending record; the store refuses a second active evolution on the target (Conflict)."""
    return store.create_evolution({
        "id": new_id("evo"), "target": str(target), "focus": focus, "cycles": cycles, "status": "pending",
        "host": socket.gethostname(), "started_at": iso(), "current_cycle": 0, "cost_usd": 0.0,
        "dry_run": dry_run,
    })


def start_detached(store: Store, evolution_id: str) -> int:
    """Start the runner as the leader of a new process group, detached from this terminal."""
    folder = paths.evolution_dir(evolution_id)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "runner.stderr", "ab") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "lib.evolution.worker", evolution_id],
            cwd=paths.CODE_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=stderr, start_new_session=True, env={**os.environ, "TDEV_EVOLUTION_ID": evolution_id},
        )
    store.update_evolution(evolution_id, {"pid": process.pid}, expect_status=("pending",))
    return process.pid


def request_stop(store: Store, evolution_id: str) -> dict:
    """Ask for a stop at the next phase boundary (status stopping); a final one is left as it is."""
    record = store.evolution_or_fail(evolution_id)
    if record["status"] in FINAL:
        return record
    store.update_evolution(evolution_id, {"status": "stopping"}, expect_status=("pending", "running"))
    if record["status"] == "pending" and not pid_alive(record.get("pid")):
        store.update_evolution(evolution_id, {"status": "stopped", "finished_at": iso(),
                                              "error": "stopped: before it started"}, expect_status=ACTIVE)
    return store.evolution_or_fail(evolution_id)


def wait_final(store: Store, evolution_id: str, timeout: float, poll: float = 0.5) -> dict:
    """The record once final, or as it is when the timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        record = store.evolution_or_fail(evolution_id)
        if record["status"] in FINAL or time.monotonic() >= deadline:
            return record
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        import psutil

        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except Exception:  # psutil missing or the process vanished meanwhile
        return True


def force_stop(store: Store, evolution_id: str, grace: float = 5.0) -> dict:
    """End the runner's whole process group at once, then record status killed."""
    record = store.evolution_or_fail(evolution_id)
    if record["status"] in FINAL:
        return record
    if record.get("host") and record["host"] != socket.gethostname():
        raise Conflict(f"evolution {evolution_id} runs on host {record['host']}",
                       "run stop_evolution.py --force on that host")
    pid = record.get("pid")
    if pid and pid_alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        except PermissionError:
            raise Conflict(f"not allowed to signal process group {pid}", "run as the user that started it") from None
        deadline = time.monotonic() + grace
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    store.update_evolution(evolution_id, {"status": "killed", "finished_at": iso(),
                                          "error": "killed: force stop by operator", "current_phase": None},
                           expect_status=ACTIVE)
    return store.evolution_or_fail(evolution_id)
