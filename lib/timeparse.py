"""Time arguments of the runbook: today, yesterday, dates, ISO stamps, durations, months."""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, time, timedelta

from lib.errors import UsageError

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def utcnow() -> datetime:
    """Now, or the moment `TDEV_NOW` names (ISO-8601): tests and replays pin the clock with it."""
    pinned = os.environ.get("TDEV_NOW")
    if pinned:
        return from_iso(pinned)
    return datetime.now(UTC)


def iso(moment: datetime | None = None) -> str:
    """UTC ISO-8601 with seconds precision, the storage format (DESIGN §4)."""
    moment = moment or utcnow()
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def from_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def local(text: str | None) -> str:
    """A stored UTC stamp shown in local time with the zone."""
    moment = from_iso(text)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if moment else ""


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(str(text))
    if not match:
        raise UsageError(f"bad duration {text!r}", "use a number and a unit: 30m, 24h, 7d, 2w")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min).astimezone()


def parse_date(text: str) -> date:
    """today, yesterday or YYYY-MM-DD, as a local calendar day."""
    word = str(text).strip().lower()
    today = utcnow().astimezone().date()
    if word == "today":
        return today
    if word == "yesterday":
        return today - timedelta(days=1)
    try:
        return date.fromisoformat(word)
    except ValueError:
        raise UsageError(f"bad date {text!r}", "use today, yesterday or YYYY-MM-DD") from None


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants where a local calendar day starts and ends."""
    start = _local_midnight(day)
    return start.astimezone(UTC), _local_midnight(day + timedelta(days=1)).astimezone(UTC)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A point in time: today, yesterday, YYYY-MM-DD, an ISO stamp, or a duration ago."""
    word = str(text).strip()
    if _DURATION.match(word):
        return (now or utcnow()) - parse_duration(word)
    if word.lower() in ("today", "yesterday") or re.fullmatch(r"\d{4}-\d{2}-\d{2}", word):
        return day_bounds(parse_date(word))[0]
    try:
        moment = datetime.fromisoformat(word.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"bad time {text!r}", "use today, yesterday, YYYY-MM-DD, an ISO timestamp or 30m/24h/7d/2w"
        ) from None
    return (moment if moment.tzinfo else moment.astimezone()).astimezone(UTC)


def parse_month(text: str) -> tuple[datetime, datetime]:
    """YYYY-MM as the UTC instants of its first and last local moments."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", str(text).strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise UsageError(f"bad month {text!r}", "use YYYY-MM, for example 2024-01")
    first = date(int(match.group(1)), int(match.group(2)), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return day_bounds(first)[0], day_bounds(following)[0]
