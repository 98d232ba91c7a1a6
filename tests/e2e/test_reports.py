"""sla_report.py, analyze_performance.py and generate_monthly_report.py against hand-computed figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from metrics_seed import evolution, seed_history, task

JAN = datetime(2024, 1, 1, tzinfo=UTC)


def january(tdev, github=None):
    """Six evolutions and 40 tasks in January 2024 (and some around it); 10 PRs closed, 9 merged."""
    evolutions = [
        evolution(1, JAN + timedelta(days=2), "succeeded", 2, cost=5),
        evolution(2, JAN + timedelta(days=4), "succeeded", 10, cycles=2, cost=30),  # 5 h and $15 a cycle
        evolution(3, JAN + timedelta(days=9), "failed", 1, cost=2, error="gates-failed: cycle 1: docstring"),
        evolution(4, JAN + timedelta(days=14), "succeeded", 3, cost=4),
        evolution(5, JAN + timedelta(days=20), "killed", 0.5, cost=0.5),
        evolution(6, JAN + timedelta(days=27), "succeeded", 6, cost=8),  # 6 h a cycle
        evolution(7, JAN - timedelta(days=3), "failed", 1, cost=100),  # December
        evolution(8, JAN + timedelta(days=31, hours=1), "failed", 1, cost=100),  # February
    ]
    tasks = [task(n, "evo-000001", JAN + timedelta(days=2, minutes=n), "plan", "failed" if n < 3 else "succeeded",
                  10.0, cost=0.1) for n in range(40)]
    tasks.append(task(99, "evo-000008", JAN + timedelta(days=31, hours=2), "plan", "failed", 1.0))
    seed_history(tdev, evolutions, tasks)
    if github is not None:
        for n in range(10):
            day = (JAN + timedelta(days=3 + n)).strftime("%Y-%m-%dT%H:%M:%SZ")
            github.add_pull(state="closed", created_at=day, closed_at=day, merged_at=day if n else None,
                            labels=["auto-evolution"])
        for _ in range(2):
            github.add_pull(state="open", created_at="2024-01-20T10:00:00Z", labels=["auto-evolution"])
        github.add_pull(state="closed", created_at="2023-12-01T00:00:00Z", closed_at="2023-12-02T00:00:00Z",
                        merged_at=None, labels=["auto-evolution"])


SLA_BY_HAND = {
    # finished 6, succeeded 4: 66.67% < 85%; 2 failures against a budget of 15% x 6 = 0.9
    "success_rate": {"achieved": 66.67, "counted": "evolutions",
                     "met": False, "breach": 2, "breach_unit": "count", "budget_total": 0.9,
                     "budget_used": 2, "budget_left": -1.1, "budget_left_pct": -122.22},
    # 22.5 h over 7 cycles; evo 2 and 6 each 2 h past 4 h a cycle; budget 4 h x 7 cycles
    "cycle_time": {"achieved": 3.21, "met": True, "breach": 240, "breach_unit": "minutes", "budget_total": 28,
                   "budget_used": 22.5, "budget_left": 5.5, "budget_left_pct": 19.64, "breach_evolutions": 2},
    # $49.50 over 7 cycles; evo 2 at $15 a cycle; budget $10 x 7
    "cost_per_cycle": {"achieved": 7.07, "counted": "evolutions",
                       "met": True, "breach": 1, "breach_unit": "count", "budget_total": 70,
                       "budget_used": 49.5, "budget_left": 20.5, "budget_left_pct": 29.29},
    # 9 of 10 merged: exactly 90%, met; the one unmerged PR uses the whole budget of 10% x 10
    "pr_merge_rate": {"achieved": 90.0, "met": True, "breach": 1, "breach_unit": "count", "budget_total": 1.0,
                      "budget_used": 1, "budget_left": 0.0, "budget_left_pct": 0.0},
    # 3 of 40 tasks failed: 7.5% > 5%; budget 5% x 40 = 2
    "error_rate": {"achieved": 7.5, "counted": "tasks",
                   "met": False, "breach": 3, "breach_unit": "count", "budget_total": 2.0,
                   "budget_used": 3, "budget_left": -1.0, "budget_left_pct": -50.0},
}


@pytest.mark.usefixtures("utc")
def test_sla_report_json_by_hand(tdev, github):
    january(tdev, github)
    result = tdev.run("sla_report.py", "--month", "2024-01", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["month"] == "2024-01"
    assert document["window"] == {"label": "2024-01", "start": "2024-01-01T00:00:00+00:00",
                                  "end": "2024-02-01T00:00:00+00:00"}
    rows = {row["name"]: row for row in document["metrics"]}
    assert [row["target"] for row in document["metrics"]] == [85, 4, 10, 90, 5]
    for name, expected in SLA_BY_HAND.items():
        assert {key: rows[name][key] for key in expected} == expected, name


@pytest.mark.usefixtures("utc")
def test_sla_report_table(tdev):
    january(tdev)
    result = tdev.run("sla_report.py", "--month", "2024-01")
    assert result.returncode == 0, result.stderr
    lines = {line.split("  ")[0]: line for line in result.stdout.splitlines()}
    assert "MISSED" in lines["Evolution Success Rate"] and "-122.2%" in lines["Evolution Success Rate"]
    assert "2 evolutions" in lines["Evolution Success Rate"]
    assert "240 minutes" in lines["Cycle Time"] and "19.6% (5.5 h of 28.0 h)" in lines["Cycle Time"]
    assert "29.3% ($20.50 of $70.00)" in lines["Cost per Cycle"]
    assert "no data" in lines["PR Merge Rate"] and "GitHub not configured" in result.stderr


def test_sla_report_bad_month(tdev):
    result = tdev.run("sla_report.py", "--month", "2024-13")
    assert result.returncode == 2 and "bad month" in result.stderr


def performance_history(tdev):
    now = datetime.now(UTC)
    this, before = now - timedelta(days=2), now - timedelta(days=9)
    tasks = [task(n, "evo-000001", this + timedelta(minutes=n), "plan", "succeeded", 10.0 * (n + 1))
             for n in range(10)]  # 10..100 s
    tasks += [task(20 + n, "evo-000002", this + timedelta(minutes=n), "implement",
                   "failed" if n == 0 else "succeeded", 100.0 * (n + 1), agent="refactor-agent") for n in range(4)]
    tasks += [task(40 + n, "evo-000004", before + timedelta(minutes=n), "plan", "succeeded", 10.0 * (n + 1))
              for n in range(5)]  # 10..50 s the week before
    evolutions = [evolution(1, now - timedelta(days=3), "succeeded", 3),
                  evolution(2, now - timedelta(days=4), "failed", 10, cycles=2),
                  evolution(3, now - timedelta(days=1), "succeeded", 1),
                  evolution(4, now - timedelta(days=10), "succeeded", 2)]
    seed_history(tdev, evolutions, tasks)


def test_analyze_performance_week_by_hand(tdev):
    performance_history(tdev)
    result = tdev.run("analyze_performance.py", "--week", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    agents = {(r["phase"], r["agent"]): r for r in document["agents"]}
    plan = agents[("plan", "plan-agent")]
    # nearest rank: p50 of 10..100 is the 5th (50), p95 the 10th; the week before 10..50: 3rd (30) and 5th (50)
    assert (plan["tasks"], plan["p50_s"], plan["p95_s"]) == (10, 50.0, 100.0)
    assert (plan["previous_p50_s"], plan["previous_p95_s"]) == (30.0, 50.0)
    assert (plan["p50_change_pct"], plan["p95_change_pct"]) == (66.7, 100.0)
    implement = agents[("implement", "refactor-agent")]
    assert (implement["tasks"], implement["failed"], implement["p50_s"], implement["p95_s"]) == (4, 1, 200.0, 400.0)
    assert implement["p95_change_pct"] is None
    assert [r["phase"] for r in document["phases"]] == ["plan", "implement"]  # the runbook's phase order
    assert document["bottleneck"] == {"phase": "implement", "share_pct": 64.5, "p95_s": 400.0}  # 1000 of 1550 s
    assert [e["id"] for e in document["slowest"]] == ["evo-000002", "evo-000001", "evo-000003"]
    assert document["slowest"][0]["hours"] == 10.0
    # 14 h over 4 cycles against 2 h over 1 cycle
    assert (document["cycle_time_hours"], document["previous_cycle_time_hours"]) == (3.5, 2.0)
    assert document["cycle_time_change_pct"] == 75.0


def test_analyze_performance_table(tdev):
    performance_history(tdev)
    result = tdev.run("analyze_performance.py", "--week")
    assert result.returncode == 0, result.stderr
    assert "bottleneck phase: implement (64.5% of agent time, p95 6.7m)" in result.stdout
    assert "cycle time 3.50 h (+75.0% against the previous period)" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.startswith("plan") and "plan-agent" in line)
    assert "50.0s" in row and "1.7m" in row and "+66.7%" in row and "+100.0%" in row
    assert "evo-000002" in result.stdout
    empty = tdev.run("analyze_performance.py", "--days", "1")
    assert empty.returncode == 0 and "no agent tasks in this period" in empty.stdout


@pytest.mark.usefixtures("utc")
def test_monthly_report_markdown_and_charts(tdev, github, tmp_path):
    from matplotlib import image

    january(tdev, github)
    output = tmp_path / "out" / "report-2024-01.md"
    result = tdev.run("generate_monthly_report.py", "--month", "2024-01", "--output", str(output), "-v")
    assert result.returncode == 0, result.stderr
    assert f"report {output}" in result.stdout
    text = output.read_text()
    assert text.startswith("# T-Developer monthly report: January 2024")
    for needle in ("| Evolution Success Rate | 66.7% | >85% | <70% | alert | 4/6 evolutions succeeded |",
                   "| Error Rate | 7.5% | <5% | >10% | warning | 3/40 tasks failed |",
                   "| PR Merge Rate | 90.0% | >90% | <75% | warning | 9/10 closed PRs merged |",
                   "- Total: $49.50 over 6 evolutions and 7 cycles ($7.07 per cycle)",
                   "busiest day: 2024-01-05 ($30.00)",
                   "- Finished: 6 (4 succeeded, 0 unchanged, 1 failed, 0 stopped, 1 killed)",
                   "- Opened: 12", "- Merged: 9", "- Closed without merging: 1",
                   "| evo-000003 | failed | /repo/packages/agents | gates-failed: cycle 1: docstring |",
                   "| plan | plan-agent | 3 |",
                   "| Evolution Success Rate | >=85% | 66.7% | MISSED | 2 evolutions | -122.2% (-1.1 evolutions of 0.9 "
                   "evolutions) |",
                   "![Daily key metrics](report-2024-01-metrics.png)", "![Daily cost](report-2024-01-cost.png)"):
        assert needle in text, needle
    for name, height in (("report-2024-01-metrics.png", 640), ("report-2024-01-cost.png", 320)):
        path = output.parent / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 5000
        assert image.imread(path).shape[:2] == (height, 1000)


MARCH = datetime(2024, 3, 1, tzinfo=UTC)
A = {"docstring": 40.0, "complexity": 4.0, "maintainability": 60.0, "lint": 10, "security": 2}
B = {"docstring": 70.0, "complexity": 2.5, "maintainability": 80.0, "lint": 1, "security": 0}


def march(tdev):
    """Six evolutions finished in March 2024: 2 succeeded, 3 unchanged, 1 failed (its refused change measured)."""
    def day(n: int) -> datetime:
        return MARCH + timedelta(days=n)

    seed_history(tdev, [
        evolution(1, day(1), "succeeded", 1, focus="docs", target="/repo/a", files_changed=3, metrics_before=A,
                  metrics_after={**A, "docstring": 55.0}),
        evolution(2, day(4), "unchanged", 1, focus="docs", target="/repo/a", metrics_before={**A, "docstring": 55.0}),
        evolution(3, day(8), "succeeded", 1, target="/repo/a", metrics_before={**A, "docstring": 55.0},
                  metrics_after={**A, "docstring": 60.0, "complexity": 3.5, "lint": 4}),
        evolution(4, day(11), "failed", 1, target="/repo/a", metrics_before={**A, "docstring": 60.0},
                  metrics_after={**A, "docstring": 20.0, "lint": 50}, error="tests failed: exit 1"),
        evolution(5, day(2), "unchanged", 1, focus="maintainability", target="/repo/b", metrics_before=B),
        evolution(6, day(19), "unchanged", 1, focus="maintainability", target="/repo/b", metrics_before=B),
        evolution(7, MARCH - timedelta(days=3), "succeeded", 1, focus="docs", target="/repo/a",
                  metrics_before={**A, "docstring": 10.0}, metrics_after=A),  # February
    ])


@pytest.mark.usefixtures("utc")
def test_sla_counts_unchanged_evolutions_as_breaches_and_apart(tdev):
    march(tdev)
    document = json.loads(tdev.run("sla_report.py", "--month", "2024-03", "--json").stdout)
    success = next(row for row in document["metrics"] if row["name"] == "success_rate")
    # 2 of 6 succeeded: 33.33%; 4 breaches (3 of them unchanged) against a budget of 15% x 6 = 0.9
    assert {key: success[key] for key in ("achieved", "met", "breach", "unchanged", "budget_total",
                                          "budget_used")} == {"achieved": 33.33, "met": False, "breach": 4,
                                                              "unchanged": 3, "budget_total": 0.9, "budget_used": 4}
    table = tdev.run("sla_report.py", "--month", "2024-03")
    line = next(line for line in table.stdout.splitlines() if line.startswith("Evolution Success Rate"))
    assert "4 evolutions (3 unchanged)" in line


@pytest.mark.usefixtures("utc")
def test_monthly_report_counts_unchanged_and_shows_the_quality_change(tdev, tmp_path):
    march(tdev)
    output = tmp_path / "march.md"
    result = tdev.run("generate_monthly_report.py", "--month", "2024-03", "--output", str(output), "--json")
    assert result.returncode == 0, result.stderr
    text = output.read_text()
    for needle in ("| Evolution Success Rate | 33.3% | >85% | <70% | alert | 2/6 evolutions succeeded, 3 unchanged |",
                   "- Finished: 6 (2 succeeded, 3 unchanged, 1 failed, 0 stopped, 0 killed)",
                   "- Success rate: 33.3% (unchanged ones count as not succeeded)",
                   "| Target | Finished | Succeeded | Unchanged | Failed | Cost |",
                   "| /repo/a | 4 | 2 | 1 | 1 | $0.00 |", "| /repo/b | 2 | 0 | 2 | 0 | $0.00 |",
                   "## Quality change",
                   "| Target | Focus | Evolutions | Succeeded | Unchanged | Docstring | Complexity | Maintainability "
                   "| Lint | Security |",
                   # the first evolution's before (not February's), the last succeeded one's after (not the refused)
                   "| /repo/a | docs, quality | 4 | 2 | 1 | 40% -> 60% | 4 -> 3.5 | — | 10 -> 4 | 2 -> 2 |",
                   # maintainability was a focus here; nothing succeeded, so there is no after
                   "| /repo/b | maintainability | 2 | 0 | 2 | 70% -> — | 2.5 -> — | 80 -> — | 1 -> — | 0 -> — |",
                   "| Evolution Success Rate | >=85% | 33.3% | MISSED | 4 evolutions (3 unchanged) |"):
        assert needle in text, needle
    assert text.index("## Evolutions") < text.index("## Quality change") < text.index("## Pull requests")
    quality = {row["target"]: row for row in json.loads(result.stdout)["quality"]}
    assert (quality["/repo/a"]["first_evolution"], quality["/repo/a"]["last_succeeded"]) == ("evo-000001",
                                                                                            "evo-000003")
    assert quality["/repo/b"]["last_succeeded"] is None
    assert quality["/repo/b"]["metrics"]["maintainability"] == {"before": 80.0, "after": None}


@pytest.mark.usefixtures("utc")
def test_monthly_report_default_month_and_place(tdev):
    result = tdev.run("generate_monthly_report.py", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    first = datetime.now(UTC).date().replace(day=1)
    month = (first - timedelta(days=1)).strftime("%Y-%m")
    assert document["month"] == month
    assert document["report"] == str(tdev.history / "reports" / f"monthly-report-{month}.md")
    assert (tdev.history / "reports" / f"monthly-report-{month}-cost.png").exists()
    text = (tdev.history / "reports" / f"monthly-report-{month}.md").read_text()
    assert "No evolution failed or was killed." in text and "No evolution started this month." in text
