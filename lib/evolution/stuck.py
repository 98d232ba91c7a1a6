"""Stuck evolutions and orphaned agent processes (check_stuck_processes.py, the health check,
cleanup.py).

An evolution marked active is stuck when its runner is gone (same host: the pid is dead
or now another program), when its heartbeat is stale (any host), or - a warning - when a
phase runs past TIMEOUT_SECONDS. An agent process is orphaned when it carries
TDEV_EVOLUTION_ID=<id> of an evolution that is already final.
"""

from __future__ import annotations

import socket
from dataclasses import asdict, dataclass
from datetime import datetime

from lib import checks, config, humanize, procs, timeparse
from lib.errors import Conflict
from lib.evolution.lifecycle import agent_processes, runner_state
from lib.store import ACTIVE, FINAL, Store

#: every kind of finding with its status (the plugin line counts each)
KINDS = {"process-gone": "critical", "heartbeat-stale": "critical", "execution-ended": "critical",
         "phase-timeout": "warning", "orphan-process": "warning"}


@dataclass
class Finding:
    evolution_id: str
    kind: str  # process-gone | heartbeat-stale | phase-timeout | orphan-process
    status: str  # critical | warning
    summary: str
    pid: int | None = None
    host: str | None = None

    def as_json(self) -> dict:
        return asdict(self)


def stale_after() -> float:
    """Seconds without a heartbeat after which a runner counts as dead (settings evolution.*)."""
    evolution = config.settings()["evolution"]
    return float(evolution["heartbeat_seconds"]) * float(evolution["stale_after_heartbeats"])


def _seconds_since(stamp: str | None, now: datetime) -> float | None:
    moment = timeparse.from_iso(stamp)
    return None if moment is None else max(0.0, (now - moment).total_seconds())


def heartbeat_age(record: dict, now: datetime | None = None) -> float | None:
    """Seconds since the last heartbeat (or since the start, before the first one)."""
    return _seconds_since(record.get("heartbeat_at") or record.get("started_at"), now or timeparse.utcnow())


def liveness(record: dict, now: datetime, stale: float) -> Finding | None:
    """A CRITICAL finding when the runner of an active evolution is gone or silent."""
    state, detail = runner_state(record)
    age = heartbeat_age(record, now)
    if age is None:
        beat = "no heartbeat"
    elif record.get("heartbeat_at"):
        beat = f"last heartbeat {humanize.duration(age)} ago"
    else:
        beat = f"no heartbeat since it started {humanize.duration(age)} ago"
    if state in ("gone", "other"):
        return Finding(record["id"], "process-gone", "critical",
                       f"marked {record['status']} but {detail} ({beat}); "
                       f"clean up: python scripts/cleanup.py --evolution {record['id']}",
                       record.get("pid"), record.get("host"))
    if age is None or age > stale:
        return Finding(record["id"], "heartbeat-stale", "critical",
                       f"marked {record['status']}, {beat} (stale after {stale:g}s); {detail}",
                       record.get("pid"), record.get("host"))
    return None


def runner_gone(record: dict) -> str:
    """Why an active evolution counts as gone, so that cleanup.py may mark it killed; Conflict while its runner is
    alive, may be, or still shows signs of life (a starting or remote runner with a fresh heartbeat)."""
    state, detail = runner_state(record)
    stop = (f"stop it first: python scripts/stop_evolution.py --id {record['id']} --graceful "
            "(or --force), then run this again")
    if state == procs.ALIVE:
        raise Conflict(f"evolution {record['id']} is still running ({detail})", stop)
    if state == procs.DOUBT:
        raise Conflict(f"evolution {record['id']} may still be running: {detail}", stop)
    if state in (procs.REMOTE, procs.UNKNOWN):
        age = heartbeat_age(record)
        if age is not None and age <= stale_after():
            doing = "is starting" if state == procs.UNKNOWN else f"runs on host {record['host']}"
            raise Conflict(f"evolution {record['id']} {doing} ({detail}; last sign of life {age:.0f}s ago)", stop)
        detail = f"{detail}, no heartbeat for {age:.0f}s" if age is not None else detail
    return detail


def remote_liveness(record: dict) -> Finding | None:
    """A stepfunctions evolution (DESIGN §10), by its execution's state: CRITICAL when the execution ended while
    the record is active; while the execution runs, a record still pending is its task starting (Fargate takes
    a minute), and a running one is judged by its heartbeat."""
    from lib.evolution import executors

    state = executors.execution_state(record)
    line = executors.execution_ended(record, state)
    if line:
        return Finding(record["id"], "execution-ended", "critical", line, record.get("pid"), record.get("host"))
    if state and state["status"] == "UNKNOWN":
        return Finding(record["id"], "execution-ended", "critical",
                       f"marked {record['status']}; its execution cannot be read: {state['error']}",
                       record.get("pid"), record.get("host"))
    if record["status"] == "pending":
        return None
    return liveness(record, timeparse.utcnow(), stale_after())


def overdue_phases(store: Store, record: dict, now: datetime, limit: float) -> list[Finding]:
    """WARNING for each running task of the evolution older than the phase timeout it started with (limit,
    the checker's own TIMEOUT_SECONDS, for a record from before that was stored)."""
    limit = record.get("timeout_seconds") or limit
    found = []
    for task in store.list_tasks(evolution_id=record["id"], statuses=("running",)):
        age = _seconds_since(task.get("started_at"), now)
        if age is not None and age > limit:
            found.append(Finding(record["id"], "phase-timeout", "warning",
                                 f"phase {task.get('phase')} ({task.get('agent')}, {task['id']}) running for "
                                 f"{humanize.duration(age)}, past TIMEOUT_SECONDS={limit:g}",
                                 record.get("pid"), record.get("host")))
    return found


def orphans(store: Store, only: str | None = None) -> list[Finding]:
    """WARNING per live process of an evolution that is final (only: of that evolution)."""
    found = []
    for evolution_id, processes in agent_processes().items():
        if only and evolution_id != only:
            continue
        record = store.get_evolution(evolution_id)
        if not record or record["status"] not in FINAL:
            continue
        for process in processes:
            found.append(Finding(evolution_id, "orphan-process", "warning",
                                 f"process {process['pid']} ({process['cmdline'][:80] or process['name']}) still "
                                 f"runs for {record['status']} evolution; "
                                 f"end it: python scripts/cleanup.py --evolution {evolution_id}",
                                 process["pid"], socket.gethostname()))
    return found


def scan(store: Store, now: datetime | None = None) -> dict:
    """{status, active, findings}: every stuck evolution, overdue phase and orphan, worst status first."""
    now = now or timeparse.utcnow()
    stale, limit = stale_after(), config.phase_timeout()
    active = store.list_evolutions(statuses=ACTIVE)
    findings: list[Finding] = []
    for record in active:
        if record.get("executor") and record["status"] == "pending" and not (record.get("pid")
                                                                            or record.get("execution_arn")):
            continue  # waiting for a free slot (DESIGN §10): nothing runs that could be stuck
        dead = remote_liveness(record) if record.get("executor") == "stepfunctions" else liveness(record, now, stale)
        if dead:
            findings.append(dead)
        findings.extend(overdue_phases(store, record, now, limit))
    findings.extend(orphans(store))
    findings.sort(key=lambda f: (-checks.SEVERITY[f.status], f.evolution_id))
    status = checks.worst_status(f.status for f in findings)
    return {"status": status, "active": len(active), "findings": [f.as_json() for f in findings]}


def summary(result: dict) -> str:
    """One line: what is wrong, or that nothing is."""
    findings = result["findings"]
    if not findings:
        return f"{result['active']} active evolution(s), none stuck, no orphaned agent processes"
    counts = {}
    for finding in findings:
        counts[finding["kind"]] = counts.get(finding["kind"], 0) + 1
    return (f"{result['active']} active evolution(s); " + ", ".join(f"{n} {kind}" for kind, n in counts.items())
            + f": {findings[0]['evolution_id']} {findings[0]['summary']}")


def report(result: dict) -> checks.Report:
    """The plugin line: each evolution with its problem; the active count and each kind's count as perfdata."""
    failing = [{"name": f"{f['evolution_id']} {f['kind']}", "status": f["status"], "summary": f["summary"]}
               for f in result["findings"]]
    context = f"{result['active']} active evolution(s)" if failing else summary(result)
    perf = [checks.Perf("active", result["active"])]
    for kind, status in KINDS.items():
        limit = {"warn": "0"} if status == checks.WARNING else {"crit": "0"}
        perf.append(checks.Perf(kind, sum(f["kind"] == kind for f in result["findings"]), **limit))
    return checks.Report("STUCK", result["status"], failing, context, perf)
