"""Seed the evolution history the way the runner leaves it (store records, spans, task
artifacts, evolution.log), for the tests of the diagnosis, stuck and clean-up commands."""

from __future__ import annotations

import json
import secrets
import socket
from datetime import UTC, datetime, timedelta

from lib import paths
from lib.config import PHASES
from lib.store import FINAL, open_store

AGENTS = {"research": "research-agent", "plan": "planner-agent", "implement": "refactor-agent",
          "evaluate": "evaluator-agent"}


def stamp(moment: datetime, millis: bool = False) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds" if millis else "seconds")


def evolution_id(moment: datetime) -> str:
    return f"evo-{moment.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"


def task_id(moment: datetime) -> str:
    return f"task-{moment.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"


def add_evolution(store=None, *, started: datetime | None = None, status: str = "succeeded",
                  target: str = "/srv/app/packages/agents", **fields) -> dict:
    """One evolution record (no tasks); final ones get a finished_at a minute after the start."""
    store = store or open_store(create=True)
    started = started or datetime.now(UTC) - timedelta(minutes=5)
    record = {"id": evolution_id(started), "target": target, "focus": "quality", "cycles": 1, "status": status,
              "host": socket.gethostname(), "started_at": stamp(started), "heartbeat_at": stamp(started),
              "current_cycle": 1, "cost_usd": 0.0, "dry_run": False}
    if status in FINAL:
        record["finished_at"] = stamp(started + timedelta(minutes=1))
    record.update(fields)
    return store.create_evolution(record)


def failed_evolution(store=None, *, fail_phase: str = "implement",
                     error: str = "exit-code: ./agents/refactor exited with 3: boom", started: datetime | None = None,
                     target: str = "/srv/app/packages/agents", stderr_tail=("refactoring sample.py", "boom")) -> dict:
    """An evolution whose fail_phase task failed with error, with everything the runner writes."""
    store = store or open_store(create=True)
    started = started or datetime.now(UTC) - timedelta(minutes=10)
    evo = add_evolution(store, started=started, status="failed", target=target,
                        error=f"{fail_phase} failed (task pending): {error}")
    trace_id, root, cycle_span = secrets.token_hex(16), secrets.token_hex(8), secrets.token_hex(8)
    log_lines = [f"{stamp(started)} INFO [cycle 0/1] evolution started: target {target}, focus quality, 1 cycle(s)"]
    tasks = []
    moment = started + timedelta(seconds=1)
    for phase in PHASES[: PHASES.index(fail_phase) + 1]:
        failed = phase == fail_phase
        tid = task_id(moment)
        end = moment + timedelta(seconds=3)
        task = store.create_task({
            "id": tid, "evolution_id": evo["id"], "cycle": 1, "phase": phase, "agent": AGENTS[phase],
            "status": "failed" if failed else "succeeded", "attempts": 1, "started_at": stamp(moment),
            "finished_at": stamp(end), "duration_s": 3.0, "cost_usd": 0.01, "error": error if failed else None,
            "trace_id": trace_id, "output_summary": error if failed else "ok"})
        tasks.append(task)
        folder = paths.evolution_dir(evo["id"]) / "tasks"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{tid}.json").write_text(json.dumps({
            "input": {"evolution_id": evo["id"], "task_id": tid, "cycle": 1, "phase": phase, "target": target,
                      "focus": "quality", "dry_run": False, "context": {}},
            "output": None if failed else {"result": f"{phase} done"},
            "error": error if failed else None, "stderr_tail": list(stderr_tail) if failed else []}))
        store.add_span({"trace_id": trace_id, "span_id": secrets.token_hex(8), "parent_id": cycle_span,
                        "name": f"{phase} {AGENTS[phase]}", "start": stamp(moment, True), "end": stamp(end, True),
                        "status": "error" if failed else "ok",
                        "attributes": {"task_id": tid, "evolution_id": evo["id"], "agent": AGENTS[phase],
                                       "phase": phase, "cycle": 1}})
        log_lines.append(f"{stamp(moment)} INFO [cycle 1/1 {phase}] {AGENTS[phase]} (command) started: task {tid}")
        log_lines.append(f"{stamp(end)} {'ERROR' if failed else 'INFO'} [cycle 1/1 {phase}] {AGENTS[phase]} "
                         + (f"failed after 3.0s: {error}" if failed else "done in 3.0s: ok"))
        moment = end
    finished = moment + timedelta(seconds=1)
    log_lines.append(f"{stamp(finished)} ERROR [cycle 1/1 {fail_phase}] evolution failed: {fail_phase} failed "
                     f"(task {tasks[-1]['id']}): {error}")
    store.add_span({"trace_id": trace_id, "span_id": cycle_span, "parent_id": root, "name": "cycle 1",
                    "start": stamp(started + timedelta(seconds=1), True), "end": stamp(finished, True),
                    "status": "error", "attributes": {"cycle": 1}})
    store.add_span({"trace_id": trace_id, "span_id": root, "parent_id": None, "name": f"evolution {evo['id']}",
                    "start": stamp(started, True), "end": stamp(finished, True), "status": "error",
                    "attributes": {"evolution_id": evo["id"], "status": "failed"}})
    store.update_evolution(evo["id"], {"error": f"{fail_phase} failed (task {tasks[-1]['id']}): {error}",
                                       "finished_at": stamp(finished)})
    log = paths.evolution_dir(evo["id"]) / "evolution.log"
    log.write_text("\n".join(log_lines) + "\n")
    return {"evolution": store.get_evolution(evo["id"]), "tasks": tasks, "task": tasks[-1], "trace_id": trace_id}
