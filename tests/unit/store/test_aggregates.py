"""The store's aggregates: SQL (SQLite) and the generic fallbacks agree, figure for figure."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from aws_helpers import fresh_clients  # noqa: F401 - a fixture
from metrics_seed import evolution, seed, task

from lib.store.base import Store, cycles_run, nearest_rank
from lib.store.sqlite import SQLiteStore
from lib.timeparse import iso

DAY = datetime(2024, 1, 10, tzinfo=UTC)
WINDOWS = [(iso(DAY + timedelta(days=n)), iso(DAY + timedelta(days=n + 1))) for n in range(3)]


@pytest.fixture
def store():
    """Day 0: 4 evolutions (2 succeeded, 1 unchanged); day 1: 1 killed; day 2: nothing. Tasks on days 0 and 1."""
    memory = SQLiteStore.in_memory()
    evolutions = [
        evolution(1, DAY + timedelta(hours=1), "succeeded", 2, cycles=1, cost=4.0, target="/a"),
        evolution(2, DAY + timedelta(hours=2), "succeeded", 9, cycles=2, cost=30.0, target="/b"),
        evolution(3, DAY + timedelta(hours=3), "failed", 1.5, cycles=1, cost=1.0, target="/a"),
        evolution(4, DAY + timedelta(days=1, hours=1), "killed", 0.5, cycles=3, cost=0.5, target="/b",
                  current_cycle=0),
        {**evolution(5, DAY + timedelta(hours=4), "running", 1, target="/c"), "finished_at": None},
        evolution(6, DAY + timedelta(hours=5), "unchanged", 1, cycles=2, cost=2.0, target="/c"),
    ]
    durations = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    tasks = [task(n, "evo-000001", DAY + timedelta(minutes=n), "plan", "failed" if n % 4 == 0 else "succeeded",
                  d, cost=0.25) for n, d in enumerate(durations)]
    tasks += [task(20, "evo-000002", DAY + timedelta(hours=5), "research", "succeeded", 7.5, cost=1.0),
              task(21, "evo-000002", DAY + timedelta(hours=6), "research", "running", None),
              task(22, "evo-000004", DAY + timedelta(days=1, hours=2), "implement", "failed", 3.0, cost=0.5)]
    seed(memory, evolutions, tasks)
    return memory


def test_evolution_stats_per_window_by_hand(store):
    day0, day1, day2 = store.evolution_stats(WINDOWS)
    # the unchanged evolution is final: it counts as finished, with its cycles, time and cost
    assert day0 == {"window": 0, "finished": 4, "succeeded": 2, "unchanged": 1, "failed": 1, "stopped": 0,
                    "killed": 0, "cycles": 6, "seconds": int(13.5 * 3600), "cost_usd": 37.0, "over_seconds": 0,
                    "excess_seconds": 0, "over_cost": 0}
    # a killed evolution that never started a cycle still counts one cycle
    assert (day1["finished"], day1["killed"], day1["cycles"], day1["seconds"]) == (1, 1, 1, 1800)
    assert day2["finished"] == 0 and day2["cycles"] == 0 and day2["cost_usd"] == 0


def test_evolution_stats_limits_and_groups(store):
    (day0,) = store.evolution_stats(WINDOWS[:1], cycle_seconds_limit=4 * 3600, cycle_cost_limit=10)
    # evo 2: 9 h over 2 cycles = 4.5 h a cycle (> 4 h, 1 h past 8 h); $15 a cycle (> $10)
    assert (day0["over_seconds"], day0["excess_seconds"], day0["over_cost"]) == (1, 3600, 1)
    by_target = store.evolution_stats(WINDOWS, group_by="target")
    assert [(r["window"], r["target"], r["finished"]) for r in by_target] == \
        [(0, "/a", 2), (0, "/b", 1), (0, "/c", 1), (1, "/b", 1)]
    by_status = store.evolution_stats(WINDOWS[:1], group_by="status")
    assert [(r["status"], r["finished"], r[r["status"]]) for r in by_status] == \
        [("failed", 1, 1), ("succeeded", 2, 2), ("unchanged", 1, 1)]


def test_task_stats_and_nearest_rank_percentiles(store):
    rows = store.task_stats(WINDOWS, group_by=("phase",), percentiles=(50, 95))
    plan = next(r for r in rows if r["phase"] == "plan")
    # ten durations 10..100: p50 is the 5th (50), p95 the 10th (100); failed: n = 0, 4, 8
    assert (plan["tasks"], plan["failed"], plan["p50"], plan["p95"], plan["seconds"]) == (10, 3, 50, 100, 550)
    research = next(r for r in rows if r["phase"] == "research")
    assert (research["tasks"], research["p50"], research["p95"]) == (2, 7.5, 7.5)  # the running one has no duration
    totals = store.task_stats(WINDOWS)
    assert [(r["tasks"], r["failed"]) for r in totals] == [(12, 3), (1, 1), (0, 0)]
    assert totals[0]["cost_usd"] == 3.5


def test_longest_evolutions(store):
    longest = store.longest_evolutions(WINDOWS[0][0], WINDOWS[-1][1], limit=2)
    assert [(r["id"], r["seconds"]) for r in longest] == [("evo-000002", 9 * 3600), ("evo-000001", 7200)]


@pytest.mark.parametrize("call", [
    lambda s: s.evolution_stats(WINDOWS),
    lambda s: s.evolution_stats(WINDOWS, cycle_seconds_limit=3600, cycle_cost_limit=2),
    lambda s: s.evolution_stats(WINDOWS, group_by="target"),
    lambda s: s.evolution_stats(WINDOWS, group_by="status"),
    lambda s: s.task_stats(WINDOWS),
    lambda s: s.task_stats(WINDOWS, group_by=("phase", "agent"), percentiles=(50, 90, 95, 100)),
    lambda s: s.task_stats(WINDOWS, group_by=("status",)),
])
def test_sql_matches_the_generic_fallback(store, call):
    """What the DynamoDB backend inherits must give the same rows as SQLite's SQL."""

    class Generic:
        def __getattr__(self, name):
            method = getattr(Store, name, None)
            if name in ("evolution_stats", "task_stats", "longest_evolutions"):
                return method.__get__(self)
            return getattr(store, name)

    assert call(store) == call(Generic())
    assert store.longest_evolutions(WINDOWS[0][0], WINDOWS[-1][1]) == \
        Store.longest_evolutions(store, WINDOWS[0][0], WINDOWS[-1][1])


def test_helpers():
    assert [nearest_rank(p, 10) for p in (1, 50, 95, 100)] == [1, 5, 10, 10]
    assert nearest_rank(50, 0) == 1
    assert cycles_run({"current_cycle": 0, "cycles": 3}) == 1
    assert cycles_run({"current_cycle": None, "cycles": 3}) == 3
    assert cycles_run({}) == 1


def test_bad_arguments_are_refused(store):
    with pytest.raises(ValueError):
        store.evolution_stats(WINDOWS, group_by="pid")
    with pytest.raises(ValueError):
        store.task_stats(WINDOWS, percentiles=(99.9,))
    with pytest.raises(ValueError):
        store.task_stats([])


def test_existing_version_1_store_gets_the_new_index(tmp_path):
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript("CREATE TABLE evolutions (id TEXT PRIMARY KEY, target TEXT NOT NULL, focus TEXT, "
                      "cycles INTEGER, status TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT);"
                      "PRAGMA user_version = 1;")
    old.close()
    upgraded = SQLiteStore.open(create=True, path=path)
    names = {row[0] for row in upgraded.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "evolutions_finished" in names
    plan = " ".join(str(tuple(row)) for row in upgraded.db.execute(
        "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM evolutions WHERE finished_at >= '2024' AND finished_at < '2025'"))
    assert "evolutions_finished" in plan


@pytest.mark.usefixtures("fresh_clients")
def test_dynamodb_store_inherits_the_same_figures(store, aws, monkeypatch):
    """The DynamoDB backend has no SQL: the fallbacks over its list_* give SQLite's rows (moto)."""
    from lib.store import open_store

    monkeypatch.setenv("TDEV_STATE_BACKEND", "dynamodb")
    monkeypatch.setenv("TDEV_STATE_TABLE", "tdev-metrics")
    dynamo = open_store(create=True)
    dynamo.import_records(store.export_records())
    assert dynamo.evolution_stats(WINDOWS, cycle_seconds_limit=3600, cycle_cost_limit=2) == \
        store.evolution_stats(WINDOWS, cycle_seconds_limit=3600, cycle_cost_limit=2)
    assert dynamo.evolution_stats(WINDOWS, group_by="target") == store.evolution_stats(WINDOWS, group_by="target")
    assert dynamo.evolution_stats(WINDOWS, group_by="status") == store.evolution_stats(WINDOWS, group_by="status")
    assert dynamo.evolution_stats(WINDOWS)[0]["unchanged"] == 1
    assert dynamo.task_stats(WINDOWS, group_by=("phase", "agent"), percentiles=(50, 95)) == \
        store.task_stats(WINDOWS, group_by=("phase", "agent"), percentiles=(50, 95))
    assert dynamo.longest_evolutions(WINDOWS[0][0], WINDOWS[-1][1]) == \
        store.longest_evolutions(WINDOWS[0][0], WINDOWS[-1][1])
