"""lib/insight/history.py: the IMPACT text of an evolution, per focus and per outcome."""

from __future__ import annotations

import pytest

from lib.insight import history
from lib.quality import FOCUS_METRICS
from lib.quality.measure import FOCUS_SCORES

BEFORE = {"docstring": 41.18, "complexity": 3.5, "maintainability": 61.2, "lint": 12, "security": 2}


def succeeded(focus: str, files: int | None = 2, **after) -> dict:
    return {"status": "succeeded", "focus": focus, "files_changed": files, "metrics_before": BEFORE,
            "metrics_after": {**BEFORE, **after}}


@pytest.mark.parametrize(("record", "expected"), [
    (succeeded("docs", docstring=57.0), "2 files, docstring 41.18%->57%"),
    (succeeded("complexity", files=1, complexity=3.25), "1 file, complexity 3.5->3.25"),
    (succeeded("maintainability", maintainability=64.0), "2 files, maintainability 61.2->64"),
    (succeeded("security", security=0, lint=0), "2 files, security 2->0"),  # lint is not the focus
    (succeeded("lint", lint=3), "2 files, lint 12->3"),
    (succeeded("quality", lint=3, docstring=50.0), "2 files, lint 12->3, docstring 41.18%->50%"),
    (succeeded("quality"), "2 files"),  # nothing the focus measures moved
    (succeeded("docs", files=None), "-"),
    ({"status": "succeeded", "focus": "docs", "files_changed": 2}, "2 files"),  # a record without metrics
    ({"status": "succeeded", "focus": "docs", "metrics_before": BEFORE, "metrics_after": None}, "-"),
    ({"status": "unchanged", "focus": "docs", "files_changed": 0, "metrics_before": BEFORE}, "no change"),
    # a failed evolution's metrics_after measured a refused change; files_changed counts kept cycles only
    ({**succeeded("docs", docstring=90.0), "status": "failed", "files_changed": 0}, "-"),
    ({**succeeded("docs", docstring=90.0), "status": "stopped"}, "2 files"),
    ({"status": "running", "focus": "docs", "metrics_before": BEFORE}, "-"),
])
def test_impact(record, expected):
    assert history.impact(record) == expected


def test_every_focus_names_the_metrics_it_moves():
    assert set(FOCUS_METRICS) == set(FOCUS_SCORES)
    assert history.metric_text("docstring", 41.5) == "41.5%"
    assert history.metric_text("lint", 3) == "3"
    assert history.metric_text("lint", None) == "—"


@pytest.mark.parametrize(("record", "expected"), [
    ({}, "-"),  # a record from before attempts were counted
    ({"attempts": 0, "implement_calls": 0}, "0"),
    ({"attempts": 2, "implement_calls": 2}, "2"),  # one implement call per attempt
    ({"attempts": 2, "implement_calls": 6}, "2 (6 candidates)"),  # evolution.candidates: 3
    ({"attempts": 3}, "3"),  # no task totals read
])
def test_attempts_name_the_candidates_when_each_attempt_asked_for_several(record, expected):
    assert history.attempts_text(record) == expected


def test_a_page_is_the_newest_evolutions_with_their_totals_and_says_when_more_were_left_out(store):
    from datetime import UTC, datetime, timedelta

    from tests.support.evolution_seed import add_evolution

    now = datetime.now(UTC)
    made = [add_evolution(store, started=now - timedelta(minutes=minutes)) for minutes in (30, 20, 10)]
    store.create_task({"id": "task-1", "evolution_id": made[2]["id"], "phase": "implement", "status": "succeeded",
                       "started_at": made[2]["started_at"], "tokens_in": 100, "tokens_out": 5})
    shown, more = history.page(store, now - timedelta(hours=1), limit=2)
    assert [r["id"] for r in shown] == [made[2]["id"], made[1]["id"]] and more
    assert (shown[0]["tokens_in"], shown[0]["implement_calls"]) == (100, 1) and shown[1]["implement_calls"] == 0
    everything, more = history.page(store, now - timedelta(hours=1), limit=0)
    assert len(everything) == 3 and not more
    assert history.page(store, now - timedelta(hours=1), limit=3)[1] is False
