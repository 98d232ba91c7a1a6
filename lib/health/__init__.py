"""A registry of checks, run concurrently, each with its own timeout.

Modules in this package register checks with @check(...); health_check.py and
pre_evolution_check.py pick them by group. A check returns (status, summary) with status
one of ok, warning, critical, unknown; an exception or a timeout makes it unknown.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from lib.errors import ToolError

STATUSES = ("ok", "warning", "critical", "unknown")
_SEVERITY = {"ok": 0, "warning": 1, "unknown": 2, "critical": 3}
EXIT_CODES = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}


@dataclass
class Check:
    name: str
    area: str
    func: Callable[[dict], tuple[str, str]]
    groups: frozenset
    timeout: float | None = None


@dataclass
class Result:
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


REGISTRY: dict[str, Check] = {}


def check(name: str, area: str, groups=("basic",), timeout: float | None = None):
    """Register a check. groups: basic (every health_check), full, post-recovery, pre-evolution."""

    def register(func):
        REGISTRY[name] = Check(name, area, func, frozenset(groups), timeout)
        return func

    return register


def load_all() -> dict[str, Check]:
    """Import every module of this package so that its checks register (lazy: no boto3 here)."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return REGISTRY


def select(groups: set[str]) -> list[Check]:
    return [c for c in load_all().values() if c.groups & groups]


def _run_one(item: Check, context: dict, out: dict) -> None:
    started = time.monotonic()
    try:
        status, summary = item.func(context)
        if status not in STATUSES:
            status, summary = "unknown", f"check returned status {status!r}"
    except ToolError as failure:
        status, summary = "unknown", str(failure)
    except Exception as crash:  # a broken check must not hide the others
        status, summary = "unknown", f"{type(crash).__name__}: {crash}"
    out[item.name] = Result(item.name, item.area, status, summary, int((time.monotonic() - started) * 1000))


def run(checks: list[Check], context: dict | None = None, default_timeout: float = 10.0) -> list[Result]:
    """Run checks in daemon threads at once; one that passes its timeout is reported unknown."""
    context = context or {}
    results: dict[str, Result] = {}
    threads = []
    start = time.monotonic()
    for item in checks:
        thread = threading.Thread(target=_run_one, args=(item, context, results), daemon=True)
        thread.start()
        threads.append((item, thread))
    for item, thread in threads:
        limit = item.timeout or default_timeout
        thread.join(max(0.0, start + limit - time.monotonic()))
        if thread.is_alive() and item.name not in results:
            results[item.name] = Result(item.name, item.area, "unknown", f"timed out after {limit:g}s",
                                        int(limit * 1000))
    return [results[item.name] for item in checks]


def worst(results: list[Result]) -> str:
    return max((r.status for r in results), key=_SEVERITY.__getitem__, default="ok")


def report(results: list[Result], as_json: bool, title: str) -> int:
    """Print a summary line and a table (or the JSON of DESIGN §8); return the plugin exit code."""
    from lib import cli

    status = worst(results)
    if as_json:
        cli.print_json({"status": status, "checks": [r.as_json() for r in results]})
    else:
        counts = {s: sum(r.status == s for r in results) for s in STATUSES}
        tally = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        print(f"{title} {status.upper()}: {len(results)} checks ({tally})")
        cli.print_table(
            [{**r.as_json(), "status": r.status.upper(), "ms": r.duration_ms} for r in results],
            [("name", "CHECK"), ("area", "AREA"), ("status", "STATUS"), ("summary", "SUMMARY"), ("ms", "MS")],
        )
    return EXIT_CODES[status]
