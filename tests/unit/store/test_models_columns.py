"""Store v5 (models): a version-4 SQLite store gains budget_usd, agents_file, tokens_cached and model in
place; token totals per evolution agree between SQLite's grouped query and the generic fallback (DynamoDB)."""

from __future__ import annotations

import sqlite3

import pytest
from aws_helpers import fresh_clients  # noqa: F401 - a fixture

from lib.store.sqlite import SCHEMA_VERSION, SQLiteStore

V4_EVOLUTIONS = ("CREATE TABLE evolutions (id TEXT PRIMARY KEY, target TEXT NOT NULL, focus TEXT, cycles INTEGER, "
                 "status TEXT NOT NULL, pid INTEGER, host TEXT, started_at TEXT NOT NULL, heartbeat_at TEXT, "
                 "finished_at TEXT, current_cycle INTEGER, current_phase TEXT, cost_usd REAL DEFAULT 0, "
                 "pr_number INTEGER, pr_url TEXT, error TEXT, dry_run INTEGER DEFAULT 0, metrics_before TEXT, "
                 "metrics_after TEXT, files_changed INTEGER, tests TEXT, pid_started_at TEXT);")
V4_TASKS = ("CREATE TABLE tasks (id TEXT PRIMARY KEY, evolution_id TEXT NOT NULL, cycle INTEGER, phase TEXT, "
            "agent TEXT, status TEXT NOT NULL, attempts INTEGER DEFAULT 0, started_at TEXT, finished_at TEXT, "
            "duration_s REAL, cost_usd REAL DEFAULT 0, error TEXT, trace_id TEXT, output_summary TEXT, "
            "tokens_in INTEGER, tokens_out INTEGER);")


def test_a_version_4_store_gains_the_v5_columns_and_keeps_its_rows(tmp_path):
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript(V4_EVOLUTIONS + V4_TASKS +
                      "INSERT INTO evolutions (id, target, status, started_at) VALUES ('evo-1', 't', 'succeeded', "
                      "'2026-01-01T00:00:00Z');"
                      "INSERT INTO tasks (id, evolution_id, status, tokens_in, tokens_out) VALUES "
                      "('task-1', 'evo-1', 'succeeded', 100, 10);"
                      "PRAGMA user_version = 4;")
    old.close()
    store = SQLiteStore.open(create=True, path=path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    store.update_evolution("evo-1", {"budget_usd": 2.5, "agents_file": "/etc/agents.yaml"})
    store.update_task("task-1", {"tokens_cached": 80, "model": "m"})
    assert store.get_evolution("evo-1")["budget_usd"] == 2.5
    assert store.list_tasks("evo-1")[0]["tokens_cached"] == 80
    assert store.task_totals(["evo-1", "evo-none"]) == {
        "evo-1": {"tokens_in": 100, "tokens_out": 10, "tokens_cached": 80, "implement_calls": 0},
        "evo-none": {"tokens_in": 0, "tokens_out": 0, "tokens_cached": 0, "implement_calls": 0}}


@pytest.mark.usefixtures("fresh_clients")
def test_dynamodb_keeps_the_v5_fields_and_sums_tokens_alike(tdev, aws, monkeypatch):
    from lib.store import open_store

    monkeypatch.setenv("TDEV_STATE_BACKEND", "dynamodb")
    monkeypatch.setenv("TDEV_STATE_TABLE", "tdev-models")
    dynamo = open_store(create=True)
    dynamo.create_evolution({"id": "evo-d", "target": "t", "status": "running", "started_at": "2026-01-01T00:00:00Z",
                             "budget_usd": 1.25, "agents_file": "/x/agents.yaml"})
    for n, cached in ((1, 0), (2, 700)):
        dynamo.create_task({"id": f"task-{n}", "evolution_id": "evo-d", "status": "succeeded", "model": "m",
                            "started_at": f"2026-01-01T00:00:0{n}Z", "tokens_in": 1000, "tokens_out": 50,
                            "tokens_cached": cached})
    assert dynamo.get_evolution("evo-d")["budget_usd"] == 1.25
    assert dynamo.task_totals(["evo-d"]) == {"evo-d": {"tokens_in": 2000, "tokens_out": 100, "tokens_cached": 700,
                                                        "implement_calls": 0}}
    assert {t["model"] for t in dynamo.list_tasks("evo-d")} == {"m"}
