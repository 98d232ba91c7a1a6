"""Run the pre-evolution checks for a target, as pre_evolution_check.py and run_evolution.py do."""

from __future__ import annotations

from lib import health
from lib.health.preflight import SAFETY


def run(target: str) -> list[health.Result]:
    return health.run(health.select({"pre-evolution"}), {"target": target}, default_timeout=30)


def gate(target: str, force: bool) -> tuple[list[health.Result], list[health.Result]]:
    """Every result, and those that stop a start: any critical check; under --force only the safety ones."""
    results = run(target)
    return results, [r for r in results if r.status in ("critical", "unknown") and (not force or r.name in SAFETY)]
