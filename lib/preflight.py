"""Run the pre-evolution checks for a target, as pre_evolution_check.py and run_evolution.py do."""

from __future__ import annotations

from lib import health
from lib.health.preflight import SAFETY


def run(target: str) -> list[health.Result]:
    return health.run(health.select({"pre-evolution"}), {"target": target}, default_timeout=30)


def blocking(results: list[health.Result], force: bool) -> list[health.Result]:
    """What stops a start: any critical check; under --force only the safety ones."""
    return [r for r in results if r.status in ("critical", "unknown") and (not force or r.name in SAFETY)]
