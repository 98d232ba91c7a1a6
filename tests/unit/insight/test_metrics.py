"""lib/insight/metrics.py: judging a value against its thresholds, trends, sparklines and bounds."""

from __future__ import annotations

import pytest

from lib.insight import metrics

SUCCESS = {"direction": "min", "normal": 85, "alert": 70, "unit": "%"}
CYCLE = {"direction": "max", "normal": 4, "alert": 6, "unit": "hours"}


@pytest.mark.parametrize(("value", "threshold", "status"), [
    (90, SUCCESS, "normal"), (85, SUCCESS, "warning"), (70, SUCCESS, "warning"), (69.9, SUCCESS, "alert"),
    (3.9, CYCLE, "normal"), (4, CYCLE, "warning"), (6, CYCLE, "warning"), (6.5, CYCLE, "alert"),
    (None, CYCLE, "no-data"), (5, None, "unknown"),
])
def test_judge_follows_the_runbook_table(value, threshold, status):
    assert metrics.judge(value, threshold) == status


def test_trend_direction_and_sparkline():
    assert metrics.trend_direction([70, 75, 80, 85, 90], "min") == "up (better)"
    assert metrics.trend_direction([2, 3, 4, 5], "max") == "up (worse)"
    assert metrics.trend_direction([5, 4, None, 2], "max") == "down (better)"
    assert metrics.trend_direction([50, 50.5, 50, 50.5], "min") == "flat"
    assert metrics.trend_direction([None, 3, None], "max") == "flat"
    assert metrics.sparkline([0, 7, None, 3.5]) == "▁█ ▅"
    assert metrics.sparkline([2, 2]) == "▄▄"
    assert metrics.sparkline([None, None]) == "  "


def test_bounds_are_written_as_in_the_runbook():
    assert metrics.describe_bound(SUCCESS, "normal") == ">85%"
    assert metrics.describe_bound(SUCCESS, "alert") == "<70%"
    assert metrics.describe_bound(CYCLE, "alert") == ">6 hours"
    assert metrics.describe_bound({"direction": "max", "normal": 10, "alert": 20, "unit": "USD"}, "normal") == "<$10"


def test_bad_days_is_a_usage_error():
    from lib.errors import UsageError

    with pytest.raises(UsageError):
        metrics.day_windows(0)
