"""Reading the evolution history for the show_* commands: queries plus their table shapes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from lib import humanize, timeparse
from lib.quality import FOCUS_METRICS
from lib.store import ACTIVE, Store

EVOLUTION_COLUMNS = [
    ("id", "ID"), ("target", "TARGET"), ("focus", "FOCUS"), ("status", "STATUS"),
    ("progress", "CYCLE/PHASE"), ("started", "STARTED"), ("elapsed", "ELAPSED"),
    ("cost", "COST"), ("pr", "PR"),
]  # fmt: skip
# The history adds each evolution's outcome: its test result and what it changed.
HISTORY_COLUMNS = [*EVOLUTION_COLUMNS[:-2], ("tokens", "TOKENS"), *EVOLUTION_COLUMNS[-2:], ("tests", "TESTS"),
                   ("attempts_shown", "ATTEMPTS"), ("impact", "IMPACT")]
PERCENT_METRICS = ("docstring", "coverage")


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
        "cost": cost_text(record.get("cost_usd") or 0),
        "tokens": tokens_text(record),
        "pr": f"#{record['pr_number']}" if record.get("pr_number") else "",
        "tests": record.get("tests") or "-",
        "attempts_shown": attempts_text(record),
        "impact": impact(record),
    }


def cost_text(usd: float) -> str:
    """$1.23; a model call's few tenths of a cent as $0.0028, not $0.00."""
    return f"${usd:.4f}" if 0 < usd < 0.01 else f"${usd:.2f}"


def tokens_text(record: dict) -> str:
    """All tokens of the evolution's tasks, and how many prompt tokens came from a cache: '12,400 (8,000 cached)'."""
    if "tokens_in" not in record:
        return ""
    total = (record["tokens_in"] or 0) + (record["tokens_out"] or 0)
    cached = record.get("tokens_cached") or 0
    return f"{total:,}" + (f" ({cached:,} cached)" if cached else "")


def attempts_text(record: dict) -> str:
    """The implement attempts (DESIGN §5), and the candidates they asked for when there were more calls than
    attempts: '2 (6 candidates)'."""
    attempts = record.get("attempts")
    if attempts is None:
        return "-"
    calls = record.get("implement_calls") or 0
    return f"{attempts} ({calls} candidates)" if attempts and calls > attempts else str(attempts)


def _with_task_totals(store: Store, records: list[dict]) -> list[dict]:
    """The records with tokens_in, tokens_out, tokens_cached and implement_calls summed over their tasks."""
    totals = store.task_totals([r["id"] for r in records])
    return [{**record, **totals.get(record["id"], {})} for record in records]


def metric_text(name: str, value: float | None) -> str:
    """A measured value as people read it: 41.5%, 3.2, 12 (— without one)."""
    if value is None:
        return "—"
    return f"{value:g}{'%' if name in PERCENT_METRICS else ''}"


def files_text(count: int) -> str:
    return f"{count} file{'' if count == 1 else 's'}"


def impact(record: dict) -> str:
    """What an evolution changed: '2 files, docstring 41%->57%' (its focus's metrics that moved).

    `unchanged` says `no change`. Deltas are shown for succeeded evolutions only: a refused
    cycle's metrics_after measures a change that was thrown away. '-' when there is nothing to say.
    """
    if record.get("status") == "unchanged":
        return "no change"
    parts = [files_text(record["files_changed"])] if record.get("files_changed") else []
    if record.get("status") == "succeeded":
        before, after = record.get("metrics_before") or {}, record.get("metrics_after") or {}
        for name in FOCUS_METRICS.get(record.get("focus"), ()):
            old, new = before.get(name), after.get(name)
            if old is not None and new is not None and old != new:
                parts.append(f"{name} {metric_text(name, old)}->{metric_text(name, new)}")
    return ", ".join(parts) or "-"


def active(store: Store) -> list[dict]:
    return store.list_evolutions(statuses=ACTIVE)


def page(store: Store, moment: datetime, statuses: tuple | None = None, limit: int = 0,
         target: str | None = None) -> tuple[list[dict], bool]:
    """The newest `limit` evolutions started since moment (0: all), with their task totals, and whether more
    were left out: one more is asked for than is shown, so that the answer needs no count."""
    records = store.list_evolutions(since=timeparse.iso(moment), statuses=statuses, target=target,
                                    limit=limit + 1 if limit else None)
    more = bool(limit) and len(records) > limit
    return _with_task_totals(store, records[:limit] if more else records), more


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
