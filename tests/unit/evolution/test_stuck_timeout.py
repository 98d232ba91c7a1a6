"""The stuck check judges a phase by the TIMEOUT_SECONDS its evolution started with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from evolution_seed import add_evolution, stamp, task_id

from lib.evolution import stuck


def test_the_recorded_timeout_wins_and_a_record_without_one_takes_the_checkers(tdev, store):
    now = datetime.now(UTC)
    started = now - timedelta(minutes=20)
    for timeout in (600, None):
        record = add_evolution(store, status="running", target=f"/srv/{timeout}", timeout_seconds=timeout)
        store.create_task({"id": task_id(started), "evolution_id": record["id"], "cycle": 1, "phase": "plan",
                           "agent": "planner-agent", "status": "running", "started_at": stamp(started),
                           "trace_id": "0" * 32})
        found = stuck.overdue_phases(store, store.get_evolution(record["id"]), now, 3600)
        if timeout:
            assert [f.kind for f in found] == ["phase-timeout"] and "TIMEOUT_SECONDS=600" in found[0].summary
        else:
            assert found == []
