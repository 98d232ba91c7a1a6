"""The state store interface (DESIGN §4): one contract, SQLite and DynamoDB behind it.

Records are plain dicts with the field names of DESIGN §4, so that --json output,
backups and both backends agree without a mapping layer.
"""

from __future__ import annotations

import abc
import contextlib
import os
import secrets
from collections.abc import Iterator
from datetime import datetime

from lib.errors import Conflict, ExternalError, NotFound
from lib.statuses import ACTIVE, FINAL
from lib.timeparse import from_iso, utcnow

EVOLUTION_FIELDS = (
    "id", "target", "focus", "cycles", "status", "pid", "host", "started_at", "heartbeat_at",
    "finished_at", "current_cycle", "current_phase", "cost_usd", "pr_number", "pr_url", "error",
    "dry_run", "metrics_before", "metrics_after", "files_changed", "tests", "pid_started_at",
    "attempts", "max_attempts", "timeout_seconds", "budget_usd", "agents_file",
    "executor", "execution_arn", "remote_url", "base_sha", "target_path",
)  # fmt: skip
# pid_started_at: when the process `pid` started (from the OS), so that a later process given the same pid
# is never taken for the runner (lib.procs.identify). Schema 5 (DESIGN §4, §5): `attempts`, the implement attempts
# the evolution made in all, and `max_attempts`, its limit per cycle (--attempts); `timeout_seconds`, the
# TIMEOUT_SECONDS it started with (the stuck check judges by it); `budget_usd` (--budget-usd) and
# `agents_file` (--agents); executor (local | stepfunctions) and execution_arn: where the runner runs
# (DESIGN §10); remote_url, base_sha and target_path (the target inside its repository) let a runner
# elsewhere clone the target as it was at creation.
TASK_FIELDS = (
    "id", "evolution_id", "cycle", "phase", "agent", "status", "attempts", "started_at",
    "finished_at", "duration_s", "cost_usd", "error", "trace_id", "output_summary", "tokens_in", "tokens_out",
    "attempt", "tokens_cached", "model",
)  # fmt: skip
# Schema 5: `attempt`, the task's attempt number in its cycle; `tokens_cached`, prompt tokens read from the
# provider's cache (part of tokens_in); `model`, the model a model agent called.
SPAN_FIELDS = ("trace_id", "span_id", "parent_id", "name", "start", "end", "status", "attributes")
PATTERN_FIELDS = ("id", "kind", "source", "signature", "created_at", "hits")

class StoreLocked(ExternalError):
    """Another writer held the store past TDEV_STORE_LOCK_WAIT: the same write may succeed later."""


JSON_FIELDS = {"metrics_before", "metrics_after", "attributes", "signature"}


def target_busy(target: str, holder: str | None) -> Conflict:
    """The refusal of a second active evolution on one target, naming the evolution that holds it."""
    if not holder:
        return Conflict(f"target {target} already has an active evolution",
                        "find it: python scripts/show_active_evolutions.py; wait for it, or stop it")
    return Conflict(f"target {target} already has an active evolution {holder}",
                    f"wait for it, or stop it: python scripts/stop_evolution.py --id {holder} --graceful")


def backend_name() -> str:
    """The configured backend (TDEV_STATE_BACKEND): sqlite by default, or dynamodb."""
    return os.environ.get("TDEV_STATE_BACKEND", "sqlite").strip().lower() or "sqlite"


def new_id(prefix: str, moment: datetime | None = None) -> str:
    """evo-YYYYmmddHHMMSS-xxxxxx style ids: sortable by time, unique by the random tail."""
    return f"{prefix}-{(moment or utcnow()).strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"


class Store(abc.ABC):
    """What every backend provides. Status changes are conditional (compare and set)."""

    backend = "abstract"
    #: False when the store does not exist yet and reads answer as an empty history.
    exists = True

    # evolutions
    @abc.abstractmethod
    def create_evolution(self, record: dict) -> dict:
        """Insert; raises Conflict when the target already has an active evolution."""

    @abc.abstractmethod
    def get_evolution(self, evolution_id: str) -> dict | None: ...

    def evolution_or_fail(self, evolution_id: str) -> dict:
        """The record of an id a user gave; NotFound, with where to find the ids, when there is none."""
        record = self.get_evolution(evolution_id)
        if not record:
            raise NotFound(f"unknown evolution {evolution_id!r}",
                           "list them with python scripts/show_evolution_history.py --since 7d")
        return record

    @abc.abstractmethod
    def update_evolution(self, evolution_id: str, fields: dict, expect_status: tuple | None = None) -> bool:
        """Set fields; with expect_status only when the current status is one of those."""

    @abc.abstractmethod
    def list_evolutions(
        self,
        since: str | None = None,
        until: str | None = None,
        statuses: tuple | None = None,
        target: str | None = None,
        limit: int | None = None,
    ) -> list[dict]:
        """Newest first, filtered on started_at (UTC ISO strings) and status."""

    def active_evolutions(self) -> list[dict]:
        return self.list_evolutions(statuses=ACTIVE)

    # tasks
    @abc.abstractmethod
    def create_task(self, record: dict) -> dict: ...

    @abc.abstractmethod
    def update_task(self, task_id: str, fields: dict) -> None: ...

    @abc.abstractmethod
    def get_task(self, task_id: str) -> dict | None: ...

    @abc.abstractmethod
    def list_tasks(self, evolution_id: str | None = None, since: str | None = None,
                   statuses: tuple | None = None, limit: int | None = None) -> list[dict]:
        """Oldest first within an evolution; newest first across evolutions."""

    def task_totals(self, evolution_ids: list[str]) -> dict[str, dict]:
        """{evolution id: {tokens_in, tokens_out, tokens_cached, implement_calls}} over each evolution's tasks:
        the history's TOKENS, and its ATTEMPTS, where more implement calls than attempts were candidates."""
        totals = {}
        for evolution_id in evolution_ids:
            tasks = self.list_tasks(evolution_id)
            totals[evolution_id] = {key: sum(t.get(key) or 0 for t in tasks)
                                    for key in ("tokens_in", "tokens_out", "tokens_cached")}
            totals[evolution_id]["implement_calls"] = sum(t.get("phase") == "implement" for t in tasks)
        return totals

    # spans
    @abc.abstractmethod
    def add_span(self, record: dict) -> None: ...

    @abc.abstractmethod
    def list_spans(self, trace_id: str) -> list[dict]: ...

    # patterns
    @abc.abstractmethod
    def put_pattern(self, record: dict) -> None:
        """Insert or replace a pattern by id."""

    @abc.abstractmethod
    def list_patterns(self, kind: str | None = None) -> list[dict]: ...

    # small key-value facts (agent capacity before a stop, last verify result, ...)
    @abc.abstractmethod
    def get_meta(self, key: str, default=None): ...

    @abc.abstractmethod
    def set_meta(self, key: str, value) -> None: ...

    @abc.abstractmethod
    def delete_meta(self, key: str) -> None: ...

    # whole-store export and import (backups of backends without a file to copy)
    @abc.abstractmethod
    def export_records(self):
        """Yield (kind, record) for every row: kind is evolution, task, span, pattern or meta."""

    @abc.abstractmethod
    def import_records(self, records) -> int:
        """Write (kind, record) pairs as exported; returns how many."""

    # aggregates for metrics and reports ------------------------------------------------
    # Windows are [start, end) pairs of UTC ISO strings (days, weeks, a month). These
    # fallbacks loop over list_*; backends with a query language override them (SQLite
    # does, with one SQL statement each) and must return the same rows.

    def evolution_stats(self, windows: list[tuple[str, str]], group_by: str | None = None,
                        cycle_seconds_limit: float | None = None,
                        cycle_cost_limit: float | None = None) -> list[dict]:
        """Final evolutions whose finished_at falls in each window, summed.

        One row per window (in order, zeros when empty); with group_by (target, focus or
        status) one row per window and value present instead. Each row: window (index),
        [group_by], finished, one count per FINAL status (succeeded, unchanged, failed,
        stopped, killed), cycles (cycles run: current_cycle, else cycles, at least 1),
        seconds (finished_at - started_at), cost_usd, and against the per-cycle limits
        when given: over_seconds and over_cost (how many evolutions averaged more per
        cycle), excess_seconds (time past limit x cycles).
        """
        rows: dict[tuple, dict] = {}
        if group_by is None:
            rows = {(index,): _empty_evolution_row(index) for index in range(len(windows))}
        for record in self.list_evolutions(statuses=FINAL):
            finished = record.get("finished_at")
            for index, (start, end) in enumerate(windows):
                if finished and start <= finished < end:
                    key = (index,) if group_by is None else (index, record.get(group_by))
                    row = rows.setdefault(key, {**_empty_evolution_row(index), group_by: key[-1]})
                    _add_evolution(row, record, cycle_seconds_limit, cycle_cost_limit)
        return [round_sums(rows[key]) for key in sorted(rows, key=_group_order)]

    def task_stats(self, windows: list[tuple[str, str]], group_by: tuple = (),
                   percentiles: tuple = ()) -> list[dict]:
        """Tasks whose started_at falls in each window, summed.

        One row per window (zeros when empty); with group_by (any of phase, agent,
        status) one row per window and group present. Each row: window, [group fields],
        tasks, failed (status failed), cost_usd, seconds (sum of duration_s), and p<N>
        for each percentile asked: the nearest-rank percentile of duration_s (None
        without durations).
        """
        earliest = min((start for start, _ in windows), default=None)
        groups: dict[tuple, list[dict]] = {}
        if not group_by:
            groups = {(index,): [] for index in range(len(windows))}
        for task in self.list_tasks(since=earliest):
            started = task.get("started_at")
            for index, (start, end) in enumerate(windows):
                if started and start <= started < end:
                    groups.setdefault((index, *(task.get(f) for f in group_by)), []).append(task)
        return [_task_row(key, groups[key], group_by, percentiles) for key in sorted(groups, key=_group_order)]

    def longest_evolutions(self, start: str, end: str, limit: int = 5) -> list[dict]:
        """Final evolutions finished in [start, end), longest first, each with its seconds."""
        found = [{**r, "seconds": _seconds(r)} for r in self.list_evolutions(statuses=FINAL)
                 if r.get("finished_at") and start <= r["finished_at"] < end]
        return sorted(found, key=lambda r: (-r["seconds"], r["id"]))[:limit]

    # one operation at a time across the hosts sharing the store (a restore)
    @contextlib.contextmanager
    def exclusive(self, name: str, seconds: float) -> Iterator[None]:
        """Hold the claim `name` while the block runs; Conflict, naming the holder, when another process holds
        it. A store on one machine relies on the caller's flock (lib.locks), so nothing is written here."""
        yield

    # housekeeping
    @abc.abstractmethod
    def counts(self) -> dict:
        """Row counts per record kind (for backups' manifests and health)."""

    @abc.abstractmethod
    def check(self) -> str:
        """An integrity check: 'ok' or what is wrong."""

    def compact(self) -> None:
        """Reclaim space where the backend can (nothing to do by default)."""
        return None

    def close(self) -> None:
        """Release connections (nothing to do by default)."""
        return None


# ---- helpers of the aggregate fallbacks (the SQLite store computes the same in SQL) ------

def nearest_rank(percentile: int, count: int) -> int:
    """The 1-based rank of the nearest-rank percentile: ceil(p/100 x n), at least 1."""
    return max(1, (percentile * count + 99) // 100)


def cycles_run(record: dict) -> int:
    """Cycles an evolution ran: current_cycle when recorded, else the cycles asked for; at least 1."""
    value = record.get("current_cycle")
    if value is None:
        value = record.get("cycles")
    return max(int(value or 1), 1)


def _seconds(record: dict) -> int:
    return int(from_iso(record["finished_at"]).timestamp()) - int(from_iso(record["started_at"]).timestamp())


def _group_order(key: tuple) -> tuple:
    """Window first, then group values with None first (as SQL sorts NULL)."""
    return key[0], ["" if value is None else str(value) for value in key[1:]]


def _task_row(key: tuple, tasks: list[dict], group_by: tuple, percentiles: tuple) -> dict:
    durations = sorted(t["duration_s"] for t in tasks if t.get("duration_s") is not None)
    row = {"window": key[0], **dict(zip(group_by, key[1:], strict=True)), "tasks": len(tasks),
           "failed": sum(t.get("status") == "failed" for t in tasks),
           "cost_usd": sum(t.get("cost_usd") or 0 for t in tasks), "seconds": sum(durations)}
    for p in percentiles:
        row[f"p{p}"] = durations[nearest_rank(p, len(durations)) - 1] if durations else None
    return round_sums(row)


def _empty_evolution_row(index: int) -> dict:
    return {"window": index, "finished": 0, **{status: 0 for status in FINAL}, "cycles": 0, "seconds": 0,
            "cost_usd": 0.0, "over_seconds": 0, "excess_seconds": 0, "over_cost": 0}


def _add_evolution(row: dict, record: dict, seconds_limit: float | None, cost_limit: float | None) -> None:
    cycles, seconds, cost = cycles_run(record), _seconds(record), record.get("cost_usd") or 0.0
    row["finished"] += 1
    row[record["status"]] += 1
    row["cycles"] += cycles
    row["seconds"] += seconds
    row["cost_usd"] += cost
    if seconds_limit is not None:
        row["over_seconds"] += seconds > seconds_limit * cycles
        row["excess_seconds"] += max(0, seconds - seconds_limit * cycles)
    if cost_limit is not None:
        row["over_cost"] += cost > cost_limit * cycles


def round_sums(row: dict) -> dict:
    """Sums of floats rounded the same way on every backend (to the micro-unit)."""
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}
