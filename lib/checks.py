"""The one vocabulary of every check, gate, audit and verification: statuses, their order,
the monitoring-plugin exit codes, the result of one check and the plugin line of a command
(`HEALTH CRITICAL: store, backup_age (2 of 9 checks) | 'store'=0.012s ...`).

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


#: Units of measure the plugin guidelines know; a figure in any other unit is shown bare.
UOMS = ("s", "ms", "us", "%", "B", "KB", "MB", "TB", "c")


def _number(value: float) -> str:
    """A figure without exponent or trailing zeros (perfdata parsers read plain decimals)."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def limit(bound: float | None, direction: str | None) -> str:
    """A threshold as a plugin range: min (higher is better) alerts below it ('50:'), max above it ('10')."""
    if bound is None:
        return ""
    return f"{_number(bound)}:" if direction == "min" else _number(bound)


@dataclass(frozen=True)
class Perf:
    """One figure of a plugin line: 'label'=value[UOM];warn;crit (Nagios plugin guidelines)."""

    label: str
    value: float | None  # None: the figure could not be measured (U)
    unit: str = ""
    warn: str = ""
    crit: str = ""

    def __str__(self) -> str:
        label = self.label.replace("'", "''")
        value = "U" if self.value is None else _number(self.value) + (self.unit if self.unit in UOMS else "")
        return f"'{label}'={value};{self.warn};{self.crit}".rstrip(";")


@dataclass
class Result:
    """One check's outcome, as health_check.py --json shows it (DESIGN §8)."""

    name: str
    area: str
    status: str
    summary: str
    duration_ms: int
    details: dict = field(default_factory=dict)
    #: figures for the plugin line's perfdata; not part of the JSON document
    perf: tuple[Perf, ...] = ()

    def as_json(self) -> dict:
        data = asdict(self)
        data.pop("perf")
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


@dataclass
class Report:
    """A check command's outcome as Nagios, Icinga and Sensu read it, and as --notify sends it.

    failing: {name, status, summary} of every item that is not OK, in the command's order;
    context: what was checked (counts, the target), shown after the names.
    """

    title: str
    status: str
    failing: list[dict]
    context: str = ""
    perf: list[Perf] = field(default_factory=list)

    @classmethod
    def of(cls, results: list[Result], title: str, context: str = "", timings: bool = False) -> Report:
        """From check results; timings: each check's duration is the figure (checks that measure nothing)."""
        names = _unique_names(results)
        failing = [{"name": name, "status": r.status, "summary": r.summary}
                   for name, r in zip(names, results, strict=True) if r.status != OK]
        counted = f"{len(failing)} of {len(results)} checks" if failing else f"{len(results)} checks ok"
        if timings:
            perf = [Perf(name, r.duration_ms / 1000, "s") for name, r in zip(names, results, strict=True)]
        else:
            perf = [Perf(p.label if name == r.name else f"{p.label} [{r.area}]", p.value, p.unit, p.warn, p.crit)
                    for name, r in zip(names, results, strict=True) for p in r.perf]
        return cls(title, worst(results), failing, "; ".join(filter(None, [counted, context])), perf)

    @property
    def exit_code(self) -> int:
        return exit_code(self.status)

    def status_line(self) -> str:
        """TITLE STATUS: what failed, worst first (context), without the perfdata."""
        groups: dict[str, list[str]] = {}
        for item in sorted(self.failing, key=lambda item: -SEVERITY[item["status"]]):
            groups.setdefault(item["status"], [])
            if item["name"] not in groups[item["status"]]:
                groups[item["status"]].append(item["name"])
        what = "; ".join(", ".join(names) if status == self.status else f"{status.upper()}: {', '.join(names)}"
                         for status, names in groups.items())
        body = f"{what} ({self.context})" if what and self.context else what or self.context
        return f"{self.title} {self.status.upper()}: {body}"

    def first_line(self) -> str:
        """The status line and, after |, the perfdata."""
        figures = " ".join(map(str, self.perf))
        return self.status_line() + (f" | {figures}" if figures else "")


def _unique_names(results: list[Result]) -> list[str]:
    """Each result's name, with its area when another result carries the same name (gates of two targets)."""
    seen: dict[str, int] = {}
    for r in results:
        seen[r.name] = seen.get(r.name, 0) + 1
    return [r.name if seen[r.name] == 1 else f"{r.name} [{r.area}]" for r in results]
