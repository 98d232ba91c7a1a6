"""A registry of checks, run concurrently, each with its own timeout.

Modules in this package register checks with @check(...); health_check.py and
pre_evolution_check.py pick them by group. A check returns (status, summary) with status
one of lib.checks.STATUSES; an exception or a timeout makes it unknown. A broken config file
never stops the run: the `config` check reports it as critical, and a check that needs the
file says so and is unknown.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lib import config
from lib.checks import STATUSES, Result
from lib.errors import ToolError


@dataclass
class Check:
    name: str
    area: str
    func: Callable[[dict], tuple[str, str]]
    groups: frozenset
    timeout: float | None = None


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
    except config.ConfigFileError as broken:
        status, summary = "unknown", f"not checked: it needs {broken.path}, which is broken (its own row says why)"
    except ToolError as failure:
        status, summary = "unknown", str(failure)
    except Exception as crash:  # a broken check must not hide the others
        status, summary = "unknown", f"{type(crash).__name__}: {crash}"
    out[item.name] = Result(item.name, item.area, status, summary, int((time.monotonic() - started) * 1000))


def default_timeout() -> float:
    """settings health.check_timeout_seconds; the shipped default while settings.yaml is broken."""
    try:
        return float(config.settings()["health"]["check_timeout_seconds"])
    except config.ConfigFileError:
        return float(config.DEFAULTS["settings"]["health"]["check_timeout_seconds"])


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
