"""The monitoring-plugin line of every check command: status, what failed, perfdata (Nagios plugin guidelines)."""

from __future__ import annotations

import pytest

from lib.checks import Perf, Report, Result, limit


@pytest.mark.parametrize(("figure", "text"), [
    (Perf("docstring", 56.7, "%", crit=limit(50, "min")), "'docstring'=56.7%;;50:"),
    (Perf("error_rate", 4.25, "%", limit(5, "max"), limit(10, "max")), "'error_rate'=4.25%;5;10"),
    (Perf("cycle_time", None, "hours", "4", "6"), "'cycle_time'=U;4;6"),  # not measured; hours is no UOM
    (Perf("complexity", 3.0, "cc"), "'complexity'=3"),
    (Perf("bytes", 12345678.0, "B"), "'bytes'=12345678B"),  # never an exponent
    (Perf("it's", 0.012, "s"), "'it''s'=0.012s"),  # a quote in a label is doubled
])
def test_perfdata(figure, text):
    assert str(figure) == text


def results(*statuses: str) -> list[Result]:
    names = ("store", "backup_age", "disk", "config", "github")[:len(statuses)]
    return [Result(name, "local", status, f"{name} is {status}", 12)
            for name, status in zip(names, statuses, strict=True)]


def test_first_line_names_what_failed_worst_first_with_timings():
    report = Report.of(results("critical", "warning", "critical", "ok", "unknown"), "HEALTH", timings=True)
    assert report.first_line() == ("HEALTH CRITICAL: store, disk; UNKNOWN: github; WARNING: backup_age "
                                   "(4 of 5 checks) | 'store'=0.012s 'backup_age'=0.012s 'disk'=0.012s "
                                   "'config'=0.012s 'github'=0.012s")
    assert report.exit_code == 2
    assert [item["name"] for item in report.failing] == ["store", "backup_age", "disk", "github"]


def test_ok_line_counts_and_context_and_no_perfdata_without_figures():
    report = Report.of(results("ok", "ok"), "VERIFY", context="restore of daily/x.tar.zst")
    assert report.first_line() == "VERIFY OK: 2 checks ok; restore of daily/x.tar.zst"
    assert report.exit_code == 0


def test_same_name_in_two_areas_is_told_apart_and_json_is_unchanged():
    gate = [Result("docstring", f"gates {target}", status, "s", 1, {"value": value},
                   (Perf("docstring", value, "%", crit="50:"),))
            for target, status, value in (("a", "critical", 20.0), ("b", "ok", 80.0))]
    line = Report.of(gate, "METRICS").first_line()
    assert line == ("METRICS CRITICAL: docstring [gates a] (1 of 2 checks) | 'docstring [gates a]'=20%;;50: "
                    "'docstring [gates b]'=80%;;50:")
    assert gate[0].as_json() == {"name": "docstring", "area": "gates a", "status": "critical", "summary": "s",
                                 "duration_ms": 1, "details": {"value": 20.0}}
