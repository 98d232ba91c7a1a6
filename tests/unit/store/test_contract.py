"""One suite that every state store backend passes: SQLite and DynamoDB (on moto)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from aws_helpers import fresh_clients  # noqa: F401

from lib import procs
from lib.errors import Conflict, NotFound
from lib.store import ACTIVE, FINAL


@pytest.fixture(params=["sqlite", "dynamodb"])
def backend(request, tdev, monkeypatch):
    monkeypatch.setenv("TDEV_STATE_BACKEND", request.param)
    if request.param == "dynamodb":
        request.getfixturevalue("aws")
        monkeypatch.setenv("TDEV_STATE_TABLE", "tdev-contract")
    return request.param


@pytest.fixture
def store(backend):
    from lib.store import open_store

    opened = open_store(create=True)
    yield opened
    opened.close()


def evolution(ident: str, target: str = "packages/agents", status: str = "pending",
              started: str = "2024-01-15T10:00:00+00:00", **fields) -> dict:
    return {"id": ident, "target": target, "focus": "quality", "cycles": 1, "status": status, "pid": 42,
            "host": "box", "started_at": started, "cost_usd": 0.5, "dry_run": False, **fields}


def task(ident: str, evolution_id: str, started: str, **fields) -> dict:
    return {"id": ident, "evolution_id": evolution_id, "cycle": 1, "phase": "research", "agent": "research-agent",
            "status": "running", "attempts": 1, "started_at": started, **fields}


def test_create_and_get_round_trip_every_field(store):
    record = evolution("evo-1", metrics_before={"docstring": 61.5, "files": 3}, pr_number=None)
    created = store.create_evolution(record)
    assert created["id"] == "evo-1" and created["status"] == "pending"
    assert created["metrics_before"] == {"docstring": 61.5, "files": 3}
    assert created["cost_usd"] == 0.5 and created["cycles"] == 1 and created["dry_run"] is False
    assert created["pr_number"] is None and created["finished_at"] is None
    assert store.get_evolution("nope") is None


def test_an_unknown_evolution_a_user_names_fails_with_where_to_find_the_ids(store):
    store.create_evolution(evolution("evo-1"))
    assert store.evolution_or_fail("evo-1")["id"] == "evo-1"
    with pytest.raises(NotFound, match="unknown evolution 'nope'; list them with .*show_evolution_history.py"):
        store.evolution_or_fail("nope")


def test_one_active_evolution_per_target(store):
    store.create_evolution(evolution("evo-1"))
    with pytest.raises(Conflict, match="already has an active evolution evo-1"):
        store.create_evolution(evolution("evo-2"))
    store.create_evolution(evolution("evo-3", target="packages/other"))
    assert store.update_evolution("evo-1", {"status": "succeeded", "finished_at": "2024-01-15T11:00:00+00:00"})
    store.create_evolution(evolution("evo-2"))  # the target is free again
    assert {e["id"] for e in store.active_evolutions()} == {"evo-2", "evo-3"}


def test_unchanged_is_final_on_every_backend(store):
    """An evolution that changed nothing is over: its target is free and it lists with the final ones."""
    store.create_evolution(evolution("evo-1", status="running"))
    assert store.update_evolution("evo-1", {"status": "unchanged", "finished_at": "2024-01-15T11:00:00+00:00",
                                            "files_changed": 0}, expect_status=ACTIVE)
    assert not store.update_evolution("evo-1", {"status": "stopping"}, expect_status=ACTIVE)
    store.create_evolution(evolution("evo-2"))  # the target is free again
    assert [e["id"] for e in store.active_evolutions()] == ["evo-2"]
    assert [e["id"] for e in store.list_evolutions(statuses=FINAL)] == ["evo-1"]
    assert [e["id"] for e in store.list_evolutions(statuses=("unchanged",))] == ["evo-1"]
    assert store.get_evolution("evo-1")["files_changed"] == 0


def test_conditional_status_change(store):
    store.create_evolution(evolution("evo-1"))
    assert store.update_evolution("evo-1", {"status": "running"}, expect_status=("pending",))
    assert not store.update_evolution("evo-1", {"status": "running"}, expect_status=("pending",))
    assert store.update_evolution("evo-1", {"current_phase": "plan", "current_cycle": 1})
    record = store.get_evolution("evo-1")
    assert record["status"] == "running" and record["current_phase"] == "plan"
    assert not store.update_evolution("missing", {"status": "stopped"})


def test_two_operators_cannot_both_take_one_evolution(store):
    from lib.store import open_store

    store.create_evolution(evolution("evo-1"))
    results, barrier = [], threading.Barrier(4)

    def take():  # each operator has its own connection, as separate processes do
        own = open_store()
        barrier.wait()
        results.append(own.update_evolution("evo-1", {"status": "running"}, expect_status=("pending",)))
        own.close()

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]


def test_list_evolutions_filters_and_orders_newest_first(store):
    store.create_evolution(evolution("evo-a", target="t1", status="succeeded", started="2024-01-14T23:00:00+00:00"))
    store.create_evolution(evolution("evo-b", target="t2", status="failed", started="2024-01-15T01:00:00+00:00"))
    store.create_evolution(evolution("evo-c", target="t3", status="running", started="2024-01-15T12:00:00+00:00"))
    store.create_evolution(evolution("evo-d", target="t4", status="succeeded", started="2024-01-16T00:00:00+00:00"))
    assert [e["id"] for e in store.list_evolutions()] == ["evo-d", "evo-c", "evo-b", "evo-a"]
    day = store.list_evolutions(since="2024-01-15T00:00:00+00:00", until="2024-01-16T00:00:00+00:00")
    assert [e["id"] for e in day] == ["evo-c", "evo-b"]
    assert [e["id"] for e in store.list_evolutions(statuses=("succeeded",))] == ["evo-d", "evo-a"]
    assert [e["id"] for e in store.list_evolutions(target="t2")] == ["evo-b"]
    assert [e["id"] for e in store.list_evolutions(limit=2)] == ["evo-d", "evo-c"]
    assert [e["id"] for e in store.list_evolutions(statuses=("succeeded",), limit=1)] == ["evo-d"]


def test_tasks(store):
    store.create_evolution(evolution("evo-1"))
    store.create_task(task("task-2", "evo-1", "2024-01-15T10:05:00+00:00", phase="plan"))
    store.create_task(task("task-1", "evo-1", "2024-01-15T10:01:00+00:00"))
    store.create_task(task("task-9", "evo-9", "2024-01-15T10:03:00+00:00"))
    store.update_task("task-1", {"status": "succeeded", "duration_s": 1.5, "cost_usd": 0.25, "error": None})
    assert [t["id"] for t in store.list_tasks(evolution_id="evo-1")] == ["task-1", "task-2"]
    assert [t["id"] for t in store.list_tasks()] == ["task-2", "task-9", "task-1"]
    assert [t["id"] for t in store.list_tasks(since="2024-01-15T10:02:00+00:00")] == ["task-2", "task-9"]
    assert [t["id"] for t in store.list_tasks(statuses=("succeeded",))] == ["task-1"]
    assert [t["id"] for t in store.list_tasks(limit=1)] == ["task-2"]
    done = store.get_task("task-1")
    assert done["duration_s"] == 1.5 and done["cost_usd"] == 0.25 and done["attempts"] == 1
    store.update_task("missing", {"status": "failed"})
    assert store.get_task("missing") is None


def test_spans_and_patterns(store):
    store.add_span({"trace_id": "tr-1", "span_id": "s2", "parent_id": "s1", "name": "plan",
                    "start": "2024-01-15T10:02:00+00:00", "end": "2024-01-15T10:03:00+00:00", "status": "ok",
                    "attributes": {"agent": "planner-agent"}})
    store.add_span({"trace_id": "tr-1", "span_id": "s1", "parent_id": None, "name": "cycle",
                    "start": "2024-01-15T10:00:00+00:00", "end": None, "status": "ok", "attributes": {}})
    store.add_span({"trace_id": "tr-2", "span_id": "s3", "name": "other", "start": "2024-01-15T10:01:00+00:00"})
    spans = store.list_spans("tr-1")
    assert [s["span_id"] for s in spans] == ["s1", "s2"]
    assert spans[1]["attributes"] == {"agent": "planner-agent"} and spans[0]["parent_id"] is None
    store.put_pattern({"id": "p1", "kind": "prevention", "source": "12", "signature": {"files": ["a.py"]},
                       "created_at": "2024-01-15T10:00:00+00:00", "hits": 0})
    store.put_pattern({"id": "p2", "kind": "success", "source": "evo-1", "signature": {},
                       "created_at": "2024-01-15T11:00:00+00:00", "hits": 2})
    store.put_pattern({"id": "p1", "kind": "prevention", "source": "12", "signature": {"files": ["a.py"]},
                       "created_at": "2024-01-15T10:00:00+00:00", "hits": 5})
    assert [(p["id"], p["hits"]) for p in store.list_patterns()] == [("p1", 5), ("p2", 2)]
    assert [p["id"] for p in store.list_patterns(kind="prevention")] == ["p1"]
    assert store.list_patterns(kind="prevention")[0]["signature"] == {"files": ["a.py"]}


def test_meta(store):
    assert store.get_meta("agent-capacity:x") is None
    assert store.get_meta("agent-capacity:x", {"default": True}) == {"default": True}
    store.set_meta("agent-capacity:x", {"capacity": {"reserved": 5}})
    store.set_meta("agent-capacity:x", {"capacity": {"reserved": 7}})
    assert store.get_meta("agent-capacity:x") == {"capacity": {"reserved": 7}}
    store.delete_meta("agent-capacity:x")
    store.delete_meta("agent-capacity:x")
    assert store.get_meta("agent-capacity:x") is None


def test_export_import_counts_and_check(store, backend, monkeypatch, tmp_path):
    store.create_evolution(evolution("evo-1", status="running"))
    store.create_evolution(evolution("evo-0", target="t0", status="succeeded", started="2024-01-14T10:00:00+00:00"))
    store.create_task(task("task-1", "evo-1", "2024-01-15T10:01:00+00:00"))
    store.add_span({"trace_id": "tr-1", "span_id": "s1", "name": "cycle", "start": "2024-01-15T10:00:00+00:00"})
    store.put_pattern({"id": "p1", "kind": "failure", "source": "evo-0", "created_at": "2024-01-15T10:00:00+00:00"})
    store.set_meta("k", [1, 2])
    exported = list(store.export_records())
    assert [kind for kind, _ in exported] == ["evolution", "evolution", "task", "span", "pattern", "meta"]
    assert store.counts() == {"evolutions": 2, "tasks": 1, "spans": 1, "patterns": 1, "meta": 1}
    assert store.check() == "ok"

    if backend == "dynamodb":
        monkeypatch.setenv("TDEV_STATE_TABLE", "tdev-contract-copy")
    else:
        monkeypatch.setenv("TDEV_HISTORY_DIR", str(tmp_path / "copy"))
    from lib.store import open_store

    copy = open_store(create=True)
    assert copy.import_records(exported) == 6
    assert sorted(map(repr, copy.export_records())) == sorted(map(repr, exported))
    with pytest.raises(Conflict):  # the imported active evolution still holds its target
        copy.create_evolution(evolution("evo-2"))
    copy.close()


def test_missing_store_reads_as_empty_history_said_once(backend, capsys):
    from lib.store import open_store

    empty = open_store()
    assert empty.exists is False
    assert empty.list_evolutions() == [] and empty.get_evolution("evo-1") is None and empty.get_meta("k") is None
    assert capsys.readouterr().err.count("no evolution history yet") == 1


def test_dynamodb_listing_by_time_never_scans(backend, store):
    if backend != "dynamodb":
        pytest.skip("SQLite uses its index on started_at")
    store.create_evolution(evolution("evo-1"))

    def refuse(**_):
        raise AssertionError("list_evolutions scanned the table")

    store.client.meta.events.register("before-call.dynamodb.Scan", refuse)
    try:
        assert [e["id"] for e in store.list_evolutions(since="2024-01-01T00:00:00+00:00")] == ["evo-1"]
        store.counts()
        list(store.export_records())
    finally:
        store.client.meta.events.unregister("before-call.dynamodb.Scan", refuse)


def _put_claim(store, host: str, pid: int, started: str | None, expires: float) -> None:
    item = {"pk": {"S": "claim#restore"}, "host": {"S": host}, "pid": {"N": str(pid)},
            "since": {"S": "2024-01-15T10:00:00+00:00"}, "expires": {"N": repr(expires)}}
    if started:
        item["pid_started_at"] = {"S": started}
    store.client.put_item(TableName=store.table, Item=item)


def test_a_claim_is_held_by_one_process_at_a_time_across_hosts(backend, store):
    if backend != "dynamodb":
        pytest.skip("a SQLite store is one host's: the caller's flock serves")
    from lib.store import open_store

    here, other = socket.gethostname(), open_store()
    with store.exclusive("restore", 60):
        with pytest.raises(Conflict, match=rf"a restore is already running on host {here} \(pid {os.getpid()}, "
                                           r"since .*\); this restore changed nothing; wait for it to finish"):
            with other.exclusive("restore", 60):
                pass
    with other.exclusive("restore", 60):  # released at the end of the block
        pass

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    started = procs.start_stamp(ended.pid)
    ended.wait()
    _put_claim(store, here, ended.pid, started, time.time() + 3600)  # its holder died on this host
    with store.exclusive("restore", 60):
        pass
    _put_claim(store, "elsewhere", 4242, None, time.time() + 3600)  # a live holder on another host
    with pytest.raises(Conflict, match="already running on host elsewhere .* lapses at"):
        with store.exclusive("restore", 60):
            pass
    _put_claim(store, "elsewhere", 4242, None, time.time() - 1)  # ... whose claim lapsed
    with store.exclusive("restore", 60):
        assert store._get("claim#restore")["pid"] == {"N": str(os.getpid())}
    assert store._get("claim#restore") is None


def test_attempts_round_trip_on_every_backend(store):
    """Schema 5 (issue 15): the evolution's attempts and limit, each task's attempt number."""
    store.create_evolution(evolution("evo-1", attempts=0, max_attempts=3))
    store.update_evolution("evo-1", {"attempts": 2})
    store.create_task(task("task-1", "evo-1", "2024-01-15T10:00:01+00:00", phase="implement", attempt=2))
    record = store.get_evolution("evo-1")
    assert (record["attempts"], record["max_attempts"]) == (2, 3)
    assert store.get_task("task-1")["attempt"] == 2


def test_a_version_4_sqlite_store_is_migrated_to_version_5(tmp_path):
    """An existing store keeps its rows and gains the attempt columns (empty for the old rows)."""
    import sqlite3

    from lib.store.sqlite import SCHEMA_VERSION, SQLiteStore

    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE evolutions (id TEXT PRIMARY KEY, target TEXT NOT NULL, focus TEXT, cycles INTEGER, "
        "status TEXT NOT NULL, pid INTEGER, host TEXT, started_at TEXT NOT NULL, heartbeat_at TEXT, "
        "finished_at TEXT, current_cycle INTEGER, current_phase TEXT, cost_usd REAL DEFAULT 0, pr_number INTEGER, "
        "pr_url TEXT, error TEXT, dry_run INTEGER DEFAULT 0, metrics_before TEXT, metrics_after TEXT, "
        "files_changed INTEGER, tests TEXT, pid_started_at TEXT);"
        "CREATE TABLE tasks (id TEXT PRIMARY KEY, evolution_id TEXT NOT NULL, cycle INTEGER, phase TEXT, agent TEXT, "
        "status TEXT NOT NULL, attempts INTEGER DEFAULT 0, started_at TEXT, finished_at TEXT, duration_s REAL, "
        "cost_usd REAL DEFAULT 0, error TEXT, trace_id TEXT, output_summary TEXT, tokens_in INTEGER, "
        "tokens_out INTEGER);"
        "INSERT INTO evolutions (id, target, status, started_at) VALUES ('evo-old', '/srv/a', 'succeeded', '2024');"
        "INSERT INTO tasks (id, evolution_id, status) VALUES ('task-old', 'evo-old', 'succeeded');"
        "PRAGMA user_version = 4;")
    old.close()
    upgraded = SQLiteStore.open(create=True, path=path)
    try:
        assert SCHEMA_VERSION == 5
        assert upgraded.db.execute("PRAGMA user_version").fetchone()[0] == 5
        record = upgraded.get_evolution("evo-old")
        assert record["status"] == "succeeded" and record["attempts"] is None and record["max_attempts"] is None
        assert upgraded.get_task("task-old")["attempt"] is None
        upgraded.update_evolution("evo-old", {"attempts": 3})
        assert upgraded.get_evolution("evo-old")["attempts"] == 3
    finally:
        upgraded.close()
