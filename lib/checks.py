"""The one vocabulary of every check, gate, audit and verification: statuses, their order,
the monitoring-plugin exit codes, and the result of one check.

It sits on the ground floor so that health/, backup/, quality/ and ops/ can all speak it
without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

OK, WARNING, CRITICAL, UNKNOWN = "ok", "warning", "critical", "unknown"
STATUSES = (OK, WARNING, CRITICAL, UNKNOWN)
#: How bad a status is: an unknown outranks a warning (something could not be asked) but not a critical.
SEVERITY = {OK: 0, WARNING: 1, UNKNOWN: 2, CRITICAL: 3}
#: Monitoring-plugin exit codes (Nagios, Icinga, Sensu).
EXIT_CODES = {OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3}


@dataclass
class Result:
    """One check's outcome, as health_check.py --json shows it (DESIGN §8)."""

    name: str
    area: str
    status: str
    summary: str
    duration_ms: int
    details: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        data = asdict(self)
        if not data["details"]:
            data.pop("details")
        return data


def worst_status(statuses: Iterable[str]) -> str:
    """The most severe of the statuses; ok when there are none."""
    return max(statuses, key=SEVERITY.__getitem__, default=OK)


def worst(results: Iterable[Result]) -> str:
    return worst_status(r.status for r in results)


def exit_code(status: str) -> int:
    return EXIT_CODES[status]
