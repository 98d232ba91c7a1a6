"""The state store interface (DESIGN §4): one contract, SQLite and DynamoDB behind it.

Records are plain dicts with the field names of DESIGN §4, so that --json output,
backups and both backends agree without a mapping layer.
"""

from __future__ import annotations

import abc
import secrets
from datetime import datetime

from lib.timeparse import utcnow

EVOLUTION_FIELDS = (
    "id", "target", "focus", "cycles", "status", "pid", "host", "started_at", "heartbeat_at",
    "finished_at", "current_cycle", "current_phase", "cost_usd", "pr_number", "pr_url", "error",
    "dry_run", "metrics_before", "metrics_after",
)  # fmt: skip
TASK_FIELDS = (
    "id", "evolution_id", "cycle", "phase", "agent", "status", "attempts", "started_at",
    "finished_at", "duration_s", "cost_usd", "error", "trace_id", "output_summary",
)  # fmt: skip
SPAN_FIELDS = ("trace_id", "span_id", "parent_id", "name", "start", "end", "status", "attributes")
PATTERN_FIELDS = ("id", "kind", "source", "signature", "created_at", "hits")

ACTIVE = ("pending", "running", "stopping")
FINAL = ("succeeded", "failed", "stopped", "killed")
JSON_FIELDS = {"metrics_before", "metrics_after", "attributes", "signature"}


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
