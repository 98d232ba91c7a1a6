"""Hand-made evolution and task records with round figures, for the tests of the store's aggregates,
the key metrics, their export and the reports (figures in those tests are computed by hand from these)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lib.store.sqlite import SQLiteStore
from lib.timeparse import iso


def evolution(number: int, start: datetime, status: str, hours: float, cycles: int = 1, cost: float = 0.0,
              target: str = "/repo/packages/agents", **extra) -> dict:
    """A final evolution that started at start and ran hours."""
    return {"id": f"evo-{number:06d}", "target": target, "focus": "quality", "cycles": cycles,
            "current_cycle": cycles, "status": status, "started_at": iso(start),
            "finished_at": iso(start + timedelta(hours=hours)), "cost_usd": cost, **extra}


def task(number: int, evolution_id: str, start: datetime, phase: str, status: str, duration_s: float | None,
         cost: float = 0.0, agent: str | None = None) -> dict:
    return {"id": f"task-{number:06d}", "evolution_id": evolution_id, "cycle": 1, "phase": phase,
            "agent": agent or f"{phase}-agent", "status": status, "started_at": iso(start),
            "duration_s": duration_s, "cost_usd": cost}


def seed(store, evolutions: list[dict], tasks: list[dict] = ()) -> None:
    with store.transaction():
        for record in evolutions:
            store.create_evolution(record)
        for record in tasks:
            store.create_task(record)


def seed_history(tdev, evolutions: list[dict], tasks: list[dict] = (), meta: dict | None = None) -> None:
    """Write records into the installation's SQLite store, as the runner would have."""
    history = SQLiteStore.open(create=True, path=tdev.history / "state.db")
    seed(history, evolutions, tasks)
    for key, value in (meta or {}).items():
        history.set_meta(key, value)
    history.close()


def week_of_history(tdev):
    """Seven UTC days ending today at noon (the pinned clock); the tests' figures are computed by hand from it."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    tdev.pin_clock(today + timedelta(hours=12))

    def day(back: int, hours: float = 1) -> datetime:
        return today - timedelta(days=back) + timedelta(hours=hours)

    evolutions = [
        evolution(1, day(6), "succeeded", 2, cost=5),
        evolution(2, day(5), "succeeded", 3, cost=6, target="/elsewhere"),
        evolution(3, day(5, 5), "failed", 1, cost=2),
        evolution(4, day(3), "succeeded", 5, cost=12),  # 5 h and $12 a cycle: warning
        evolution(5, day(2), "failed", 8, cycles=2, cost=50),  # 4 h and $25 a cycle: cost alert that day
        evolution(6, day(1), "succeeded", 1, cost=1),
        evolution(7, day(1, 3), "succeeded", 1, cost=1),
        evolution(8, day(0, 0.1), "succeeded", 2, cost=3),
        evolution(9, day(9), "failed", 1, cost=99),  # before the window
    ]
    tasks = [task(n, "evo-000001", day(6, 2), "plan", "succeeded", 10) for n in range(4)]
    tasks += [task(10 + n, "evo-000002", day(5, 2), "implement", "failed" if n < 2 else "succeeded", 20)
              for n in range(10)]
    tasks += [task(30 + n, "evo-000006", day(1, 2), "evaluate", "succeeded", 5) for n in range(5)]
    tasks += [task(40, "evo-000009", day(9, 2), "plan", "failed", 5)]
    seed_history(tdev, evolutions, tasks)
    return today


def week_with_unchanged(tdev):
    """Five evolutions in the last seven days (the pinned clock: today at noon): 2 succeeded, 2 unchanged,
    1 failed. The success rate is 2/5 = 40%, not 2/3 (unchanged left out) nor 4/5 (unchanged as success)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    tdev.pin_clock(today + timedelta(hours=12))
    evolutions = [
        evolution(1, today - timedelta(days=5, hours=-1), "succeeded", 1, cost=1),
        evolution(2, today - timedelta(days=4, hours=-1), "unchanged", 1, cost=1),  # a day with only this one
        evolution(3, today - timedelta(days=3, hours=-1), "failed", 1, cost=1),
        evolution(4, today - timedelta(days=2, hours=-1), "unchanged", 1, cost=1),
        evolution(5, today - timedelta(days=1, hours=-1), "succeeded", 1, cost=1),
    ]
    seed_history(tdev, evolutions)
    return today
