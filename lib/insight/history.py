"""Reading the evolution history for the show_* commands: queries plus their table shapes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from lib import humanize, timeparse
from lib.store import ACTIVE, Store

EVOLUTION_COLUMNS = [
    ("id", "ID"), ("target", "TARGET"), ("focus", "FOCUS"), ("status", "STATUS"),
    ("progress", "CYCLE/PHASE"), ("started", "STARTED"), ("elapsed", "ELAPSED"),
    ("cost", "COST"), ("pr", "PR"),
]  # fmt: skip


def elapsed(record: dict, now: datetime | None = None) -> str:
    start = timeparse.from_iso(record.get("started_at"))
    if not start:
        return ""
    end = timeparse.from_iso(record.get("finished_at")) or now or timeparse.utcnow()
    return humanize.duration(max(0.0, (end - start).total_seconds()))


def evolution_row(record: dict) -> dict:
    """A record with the display columns added (the JSON output keeps the plain record)."""
    phase = record.get("current_phase") or ""
    cycle = record.get("current_cycle")
    return {
        **record,
        "progress": f"{cycle or 0}/{record.get('cycles') or '?'} {phase}".strip(),
        "started": timeparse.local(record.get("started_at")),
        "elapsed": elapsed(record),
        "cost": f"${record.get('cost_usd') or 0:.2f}",
        "pr": f"#{record['pr_number']}" if record.get("pr_number") else "",
    }


def active(store: Store) -> list[dict]:
    return store.list_evolutions(statuses=ACTIVE)


def since(store: Store, moment: datetime, statuses: tuple | None = None, limit: int | None = None,
          target: str | None = None) -> list[dict]:
    return store.list_evolutions(since=timeparse.iso(moment), statuses=statuses, target=target, limit=limit)


def target_key(text: str | None) -> str | None:
    """A --target as the store keeps it: an absolute path (relative ones resolve from here)."""
    return str(Path(text).expanduser().resolve()) if text else None


def tally(records: list[dict]) -> str:
    """'12 evolutions: 10 succeeded, 2 failed' (statuses in the order they first appear)."""
    counts: dict[str, int] = {}
    for record in records:
        counts[record.get("status") or "?"] = counts.get(record.get("status") or "?", 0) + 1
    noun = "evolution" if len(records) == 1 else "evolutions"
    return f"{len(records)} {noun}" + (": " + ", ".join(f"{n} {s}" for s, n in counts.items()) if counts else "")
