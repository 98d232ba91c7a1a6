"""lib/insight/cost_analysis.py in process: the trend of daily costs."""

from __future__ import annotations

from lib.insight import cost_analysis


def test_trend_directions():
    flat = cost_analysis.trend([{"date": str(i), "cost_usd": 5.0} for i in range(6)])
    assert flat["direction"] == "flat" and flat["change_pct"] == 0.0
    falling = cost_analysis.trend([{"date": str(i), "cost_usd": v} for i, v in enumerate([10, 10, 2, 2])])
    assert falling["direction"] == "falling"
    assert cost_analysis.trend([{"date": "d", "cost_usd": 1.0}])["direction"] == "not enough days"
