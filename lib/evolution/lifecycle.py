"""The evolution lifecycle (DESIGN §5): create the record, start its runner detached, recognise that runner and
its agents again later (by pid, start time and TDEV_EVOLUTION_ID), stop it at a phase boundary or by force, and
record the end a dead runner cannot write."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lib import config, paths, procs
from lib.adapters import gitops
from lib.errors import Conflict, UsageError
from lib.quality import FOCUSES
from lib.store import ACTIVE, FINAL, Store, new_id
from lib.timeparse import iso

#: carried in the environment of the runner and of every agent it starts: how they are found again
ENV_KEY = "TDEV_EVOLUTION_ID"
_ENV_IN_ARGS = re.compile(rf"{ENV_KEY}=(evo-[\w-]+)")
#: how a runner shows in its command line, beside its evolution id (python -m lib.evolution.worker <id>)
RUNNER_MODULE = "lib.evolution.worker"


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


def max_attempts(attempts: int | None) -> int:
    """--attempts, else settings evolution.max_attempts: implement attempts per cycle (DESIGN §5)."""
    if attempts is None:
        return int(config.settings()["evolution"]["max_attempts"])
    if attempts < 1:
        raise UsageError(f"--attempts must be 1 or more, got {attempts}")
    return attempts


def create(store: Store, target: Path, focus: str, cycles: int, dry_run: bool, attempts: int | None = None, *,
           budget_usd: float | None = None, agents_file: Path | None = None, **fields) -> dict:
    """A pending record; the store refuses a second active evolution on the target (Conflict).
    budget_usd caps its cost (DESIGN §5 Budget); agents_file is the registry its runner reads instead of
    config/agents.yaml; fields: more of the record (the executor's: executor, remote_url, base_sha, target_path)."""
    return store.create_evolution({
        "id": new_id("evo"), "target": str(target), "focus": focus, "cycles": cycles, "status": "pending",
        "host": socket.gethostname(), "started_at": iso(), "current_cycle": 0, "cost_usd": 0.0,
        "dry_run": dry_run, "max_attempts": max_attempts(attempts), "attempts": 0,
        "timeout_seconds": config.phase_timeout(),
        "budget_usd": budget_usd, "agents_file": str(agents_file) if agents_file else None, **fields,
    })


def start_detached(store: Store, evolution_id: str) -> int:
    """Start the runner as the leader of a new process group, detached from this terminal; record its pid
    with its start time, which lib.procs.identify checks before anyone signals that pid."""
    folder = paths.evolution_dir(evolution_id)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "runner.stderr", "ab") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", RUNNER_MODULE, evolution_id],
            cwd=paths.CODE_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=stderr, start_new_session=True, env={**os.environ, ENV_KEY: evolution_id},
        )
    fields = {"pid": process.pid, "pid_started_at": procs.start_stamp(process.pid)}
    if not store.update_evolution(evolution_id, fields, expect_status=ACTIVE):
        record = store.evolution_or_fail(evolution_id)
        if record.get("pid") != process.pid:  # ended (a stop, a force stop) before the runner took it
            raise Conflict(f"evolution {evolution_id} is {record['status']} already ({record.get('error')}); "
                           "its runner did not run it", "start a new one when you are ready")
    return process.pid


def runner_state(record: dict) -> tuple[str, str]:
    """(state, detail) of an evolution's runner, by lib.procs.identify: alive (proven) | gone | other (the pid
    is another program now) | doubt (cannot be proven either way) | remote | unknown (no pid yet)."""
    return procs.identify(record.get("pid"), started=record.get("pid_started_at"), host=record.get("host"),
                       argv=(RUNNER_MODULE, record["id"]), env=(ENV_KEY, record["id"]), what="runner")


def agent_processes() -> dict[str, list[dict]]:
    """Processes on this host carrying TDEV_EVOLUTION_ID, by evolution id: [{pid, started, name, cmdline}]."""
    import psutil

    found: dict[str, list[dict]] = {}
    me = os.getpid()
    for process in psutil.process_iter(["pid", "name", "cmdline", "environ", "status", "create_time"]):
        info = process.info
        if info["pid"] == me or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        evolution_id = (info.get("environ") or {}).get(ENV_KEY)
        if not evolution_id:
            match = _ENV_IN_ARGS.search(" ".join(info.get("cmdline") or []))
            evolution_id = match.group(1) if match else None
        if evolution_id:
            found.setdefault(evolution_id, []).append(
                {"pid": info["pid"], "started": procs.start_time_iso(info["create_time"]), "name": info.get("name"),
                 "cmdline": " ".join(info.get("cmdline") or [])})
    return found


def record_killed(store: Store, evolution_id: str, reason: str, task_reason: str | None = None) -> bool:
    """Record the end a dead or killed runner cannot write: status killed, its running tasks failed.
    False when the evolution was final already (someone else ended it first: the store decides)."""
    now = iso()
    if not store.update_evolution(evolution_id, {"status": "killed", "finished_at": now, "current_phase": None,
                                                 "error": reason}, expect_status=ACTIVE):
        return False
    for task in store.list_tasks(evolution_id=evolution_id, statuses=("running",)):
        store.update_task(task["id"], {"status": "failed", "finished_at": now, "error": task_reason or reason})
    return True


def settle_if_dead(store: Store, record: dict) -> dict:
    """An active evolution whose runner is provably gone from this host cannot end itself: record it killed
    (so that nothing stays 'stopping' for ever). Returns the record as it is now."""
    if record["status"] in ACTIVE:
        state, detail = runner_state(record)
        if state in (procs.GONE, procs.OTHER):
            record_killed(store, record["id"], f"killed: runner died ({detail})")
            return store.evolution_or_fail(record["id"])
    return record


def request_stop(store: Store, evolution_id: str) -> dict:
    """Ask for a stop at the next phase boundary (status stopping). One not yet taken by its runner is
    stopped at once (the runner then finds it no longer pending and leaves it); a final one is left as it is."""
    record = store.evolution_or_fail(evolution_id)
    if record["status"] in FINAL:
        return record
    if store.update_evolution(evolution_id, {"status": "stopped", "finished_at": iso(), "current_phase": None,
                                             "error": "stopped: before it started"}, expect_status=("pending",)):
        return store.evolution_or_fail(evolution_id)
    store.update_evolution(evolution_id, {"status": "stopping"}, expect_status=("running",))
    return settle_if_dead(store, store.evolution_or_fail(evolution_id))


def wait_final(store: Store, evolution_id: str, timeout: float, poll: float = 0.5) -> dict:
    """The record once final (a runner found dead meanwhile is recorded killed), or as it is at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        record = settle_if_dead(store, store.evolution_or_fail(evolution_id))
        if record["status"] in FINAL or time.monotonic() >= deadline:
            return record
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))


@dataclass
class ForceStop:
    """What stop --force did: killed (it ended the runner's group), gone (the runner was dead already:
    nothing signalled), lost (another operator or the runner itself ended it first)."""

    outcome: str
    record: dict
    detail: str


def end_agents(evolution_id: str) -> list[int]:
    """SIGKILL the agent processes of an evolution on this host: they run in sessions of their own (DESIGN §5),
    so ending the runner's process group does not reach them. Only a process proven to carry the evolution's
    id in its environment is signalled; passes repeat until one finds none (an agent may fork meanwhile)."""
    signalled = []
    for _ in range(5):
        found = [process["pid"] for process in agent_processes().get(evolution_id, [])
                 if procs.identify(process["pid"], started=process["started"], host=None,
                                env=(ENV_KEY, evolution_id))[0] == procs.ALIVE]
        for agent_pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(agent_pid, signal.SIGKILL)
                signalled.append(agent_pid)
        if not found:
            break
    return signalled


def force_stop(store: Store, evolution_id: str, grace: float = 5.0) -> ForceStop:
    """End the runner's whole process group at once and record status killed - but only a process proven
    to be this evolution's runner is signalled (lib.procs.identify); a dead runner's record is marked killed.
    The store's conditional update picks one winner among operators racing on the evolution."""
    record = store.evolution_or_fail(evolution_id)
    if record["status"] in FINAL:
        return ForceStop("lost", record, f"already {record['status']}")
    state, detail = runner_state(record)
    pid = record.get("pid")
    if state == procs.REMOTE:
        raise Conflict(f"evolution {evolution_id} runs on host {record['host']}",
                       "run stop_evolution.py --force on that host")
    if state == procs.DOUBT:
        raise Conflict(f"evolution {evolution_id}: {detail}; nothing was signalled",
                       f"look at it (ps -o pid,lstart,args -p {pid}), end it by hand if it is the runner, then "
                       f"python scripts/cleanup.py --evolution {evolution_id}")
    if state == procs.ALIVE:
        try:
            os.killpg(pid, 0)
        except PermissionError:
            raise Conflict(f"not allowed to signal process group {pid}", "run as the user that started it") from None
        except ProcessLookupError:  # it ended this instant: the store tells how
            state, detail = procs.GONE, f"runner process {pid} is gone"
    if state != procs.ALIVE:
        reason = "killed: force stop before its runner started" if state == procs.UNKNOWN else \
            f"killed: force stop; the runner was already gone ({detail})"
        won = record_killed(store, evolution_id, reason)
        return ForceStop("gone" if won else "lost", store.evolution_or_fail(evolution_id), detail)
    if not record_killed(store, evolution_id, "killed: force stop by operator"):
        return ForceStop("lost", store.evolution_or_fail(evolution_id), detail)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    end_agents(evolution_id)
    deadline = time.monotonic() + grace
    while procs.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return ForceStop("killed", store.evolution_or_fail(evolution_id), detail)
