"""lib/insight/cost_analysis.py in process: the trend of daily costs."""

from __future__ import annotations

import time

import pytest

from lib import timeparse
from lib.insight import cost_analysis


def test_trend_directions():
    flat = cost_analysis.trend([{"date": str(i), "cost_usd": 5.0} for i in range(6)])
    assert flat["direction"] == "flat" and flat["change_pct"] == 0.0
    falling = cost_analysis.trend([{"date": str(i), "cost_usd": v} for i, v in enumerate([10, 10, 2, 2])])
    assert falling["direction"] == "falling"
    assert cost_analysis.trend([{"date": "d", "cost_usd": 1.0}])["direction"] == "not enough days"


@pytest.fixture(params=["Pacific/Kiritimati", "Pacific/Pago_Pago"])
def far_zone(request, tdev, monkeypatch):
    """Local time 14 hours ahead of UTC or 11 behind: the local day and the UTC day differ most hours."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_zone")
def test_the_tracked_period_ends_with_the_local_today(store):
    """Tracked days are local: a task of this moment is today's in every zone, east of UTC too."""
    store.create_evolution({"id": "evo-now", "target": "t", "status": "succeeded", "started_at": timeparse.iso()})
    store.create_task({"id": "task-now", "evolution_id": "evo-now", "phase": "implement", "status": "succeeded",
                       "started_at": timeparse.iso(), "cost_usd": 0.25})
    report = cost_analysis.tracked_analysis(1, store, "no Cost Explorer")
    assert report["period"]["start"] == timeparse.parse_date("today").isoformat()
    assert report["total_usd"] == 0.25 and report["trend"]["daily"][-1]["cost_usd"] == 0.25
