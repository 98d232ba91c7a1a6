"""show_metrics.py, check_metrics.py and the metrics health checks, against hand-computed figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from metrics_seed import evolution, seed_history, week_of_history, week_with_unchanged

from lib.insight import metrics

ROOT = Path(__file__).resolve().parents[2]


# ---- a week of history ---------------------------------------------------------------------------


@pytest.mark.usefixtures("utc")
def test_show_metrics_trend_json_figures_by_hand(tdev):
    today = week_of_history(tdev)
    result = tdev.run("show_metrics.py", "--trend", "--days", "7", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    days = document["days"]
    assert [d["day"] for d in days] == [(today - timedelta(days=b)).date().isoformat() for b in range(6, -1, -1)]
    assert [d["success_rate"] for d in days] == [100.0, 50.0, None, 100.0, 0.0, 100.0, 100.0]
    assert [d["cycle_time"] for d in days] == [2.0, 2.0, None, 5.0, 4.0, 1.0, 2.0]
    assert [d["cost_per_cycle"] for d in days] == [5.0, 4.0, None, 12.0, 25.0, 1.0, 3.0]
    assert [d["error_rate"] for d in days] == [0.0, 20.0, None, None, None, 0.0, None]
    assert [d["status"]["cost_per_cycle"] for d in days] == [
        "normal", "normal", "no-data", "warning", "alert", "normal", "normal"]
    assert days[1]["status"]["success_rate"] == "alert" and days[1]["status"]["error_rate"] == "alert"
    window = {m["name"]: m for m in document["metrics"]}
    # 8 finished, 6 succeeded; 23 h and $80 over 9 cycles; 2 of 19 tasks failed
    assert (window["success_rate"]["value"], window["success_rate"]["status"]) == (75.0, "warning")
    assert (window["cycle_time"]["value"], window["cycle_time"]["status"]) == (2.56, "normal")
    assert (window["cost_per_cycle"]["value"], window["cost_per_cycle"]["status"]) == (8.89, "normal")
    assert (window["error_rate"]["value"], window["error_rate"]["status"]) == (10.53, "alert")
    assert window["pr_merge_rate"]["status"] == "no-data"
    assert window["success_rate"]["daily"] == [d["success_rate"] for d in days]
    assert window["cycle_time"]["trend"] in ("up (worse)", "down (better)", "flat")
    assert "GitHub not configured" in result.stderr


@pytest.mark.usefixtures("utc")
def test_show_metrics_trend_table_without_a_terminal(tdev):
    week_of_history(tdev)
    result = tdev.run("show_metrics.py", "--trend", "--days", "7")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["DAY", "EVOLUTION", "SUCCESS"]
    day_rows = [line for line in lines if line[:4].isdigit()]
    assert len(day_rows) == 7
    assert "50.0% ALERT" in day_rows[1] and "$25.00 ALERT" in day_rows[4]
    metric_line = next(line for line in lines if line.startswith("Evolution Success Rate"))
    assert "75.0%" in metric_line and "WARNING" in metric_line and ">85%" in metric_line and "<70%" in metric_line
    assert "TREND" in result.stdout and "DAILY" not in result.stdout  # the sparkline is for terminals only
    assert not set(metrics.SPARK) & set(result.stdout)


@pytest.mark.usefixtures("utc")
def test_unchanged_evolutions_count_in_the_success_rate_denominator_only(tdev):
    week_with_unchanged(tdev)
    result = tdev.run("show_metrics.py", "--json")
    assert result.returncode == 0, result.stderr
    rate = next(m for m in json.loads(result.stdout)["metrics"] if m["name"] == "success_rate")
    assert (rate["value"], rate["status"]) == (40.0, "alert")
    assert rate["basis"] == "2/5 evolutions succeeded, 2 unchanged"
    trend = json.loads(tdev.run("show_metrics.py", "--trend", "--days", "7", "--json").stdout)
    # the day with only an unchanged evolution is a day at 0%, not a day without data
    assert [d["success_rate"] for d in trend["days"]] == [None, 100.0, 0.0, 0.0, 0.0, 100.0, None]
    assert next(m for m in trend["metrics"] if m["name"] == "success_rate")["value"] == 40.0
    check = tdev.run("check_metrics.py", "--metrics-only")
    assert check.returncode == 2
    line = next(line for line in check.stdout.splitlines() if line.startswith("success_rate"))
    assert "CRITICAL" in line and "40.0%" in line and "2/5 evolutions succeeded, 2 unchanged" in line


def test_show_metrics_window_without_history(tdev):
    result = tdev.run("show_metrics.py", "--json")
    assert result.returncode == 0
    document = json.loads(result.stdout)
    assert [m["status"] for m in document["metrics"]] == ["no-data"] * 5
    assert "no evolution history yet" in result.stderr
    assert tdev.run("show_metrics.py", "--window", "soon").returncode == 2


@pytest.mark.usefixtures("utc")
def test_pr_merge_rate_from_the_github_standin(tdev, github):
    now = datetime.now(UTC)

    def stamp(days_ago: float) -> str:
        return (now - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")

    for n in range(4):  # merged inside the window
        github.add_pull(state="closed", closed_at=stamp(1 + n), merged_at=stamp(1 + n), labels=["auto-evolution"])
    github.add_pull(state="closed", closed_at=stamp(2), labels=["auto-evolution"])  # closed, not merged
    github.add_pull(state="closed", closed_at=stamp(30), merged_at=stamp(30), labels=["auto-evolution"])  # too old
    github.add_pull(state="open", labels=["auto-evolution"])
    github.add_pull(state="closed", closed_at=stamp(1), labels=["dependencies"])  # not an evolution PR
    result = tdev.run("show_metrics.py", "--json")
    rate = next(m for m in json.loads(result.stdout)["metrics"] if m["name"] == "pr_merge_rate")
    assert (rate["value"], rate["status"], rate["basis"]) == (80.0, "warning", "4/5 closed PRs merged")
    asked = [query for method, path, _, query in github.requests if path.endswith("/issues")]
    assert asked, "the merge rate comes from the issues endpoint filtered by label"
    check = tdev.run("check_metrics.py", "--metrics-only", "--json")
    assert check.returncode == 1  # a warning only
    rows = {c["name"]: c for c in json.loads(check.stdout)["checks"]}
    assert rows["pr_merge_rate"]["status"] == "warning"
    bad_token = tdev.run("check_metrics.py", "--metrics-only", "--json", env={"GITHUB_TOKEN": "ghp_wrong"})
    assert bad_token.returncode == 3
    rows = {c["name"]: c for c in json.loads(bad_token.stdout)["checks"]}
    assert rows["pr_merge_rate"]["status"] == "unknown" and "401" in rows["pr_merge_rate"]["summary"]
    assert "ghp_wrong" not in bad_token.stdout + bad_token.stderr


# ---- check_metrics.py ----------------------------------------------------------------------------------

CLEAN_MODULE = '"""A clean module."""\n\n\ndef add(a, b):\n    """Add two numbers."""\n    return a + b\n'


@pytest.fixture
def clean_target(tmp_path):
    target = tmp_path / "clean" / "pkg"
    target.mkdir(parents=True)
    (target / "__init__.py").write_text('"""Package."""\n')
    (target / "calc.py").write_text(CLEAN_MODULE)
    return target


def test_check_metrics_passes_on_a_clean_target_without_history(tdev, clean_target):
    result = tdev.run("check_metrics.py", env={"EVOLUTION_TARGET": str(clean_target)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("METRICS OK: ")
    assert "docstring" in result.stdout and "no data (gate >= 70%)" in result.stdout  # no coverage report


def test_check_metrics_verbose_lists_the_worst_files(tdev, git_repo):
    target = git_repo / "packages" / "agents"
    result = tdev.run("check_metrics.py", "--verbose", "--json", env={"EVOLUTION_TARGET": str(target)})
    assert result.returncode == 2, result.stderr  # docstring coverage 1 of 5 = 20% < 50%
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    docstring = checks["docstring"]
    assert docstring["status"] == "critical" and docstring["details"]["value"] == 20.0
    assert docstring["details"]["worst_files"][0] == {"file": "sample.py", "value": 0.0}
    table = tdev.run("check_metrics.py", "--verbose", env={"EVOLUTION_TARGET": str(target)})
    assert table.returncode == 2
    assert "WORST FILE" in table.stdout and "sample.py" in table.stdout
    assert table.stdout.startswith("METRICS CRITICAL: docstring (")
    assert "'docstring'=20%;;50:" in table.stdout.splitlines()[0]


def test_check_metrics_coverage_report_and_all_targets(tdev, clean_target, git_repo):
    (clean_target / "coverage.json").write_text(json.dumps({"totals": {"percent_covered": 64.5}}))
    seed_history(tdev, [evolution(1, datetime(2024, 1, 2, tzinfo=UTC), "succeeded", 1, target=str(clean_target)),
                        evolution(2, datetime(2024, 1, 3, tzinfo=UTC), "failed", 1, target="/gone/away")])
    result = tdev.run("check_metrics.py", "--all", "--gates-only", "--json", cwd=git_repo)
    assert result.returncode == 2
    checks = json.loads(result.stdout)["checks"]
    coverage = next(c for c in checks if c["name"] == "coverage" and c["details"]["target"] == str(clean_target))
    assert coverage["status"] == "critical" and coverage["details"]["value"] == 64.5
    targets = {c["details"]["target"] for c in checks}
    assert targets == {str(clean_target), str(git_repo / "packages" / "agents")}  # the default resolves from cwd
    assert "skipped targets that do not exist: /gone/away" in result.stderr


def test_check_metrics_without_any_target_is_unknown(tdev):
    result = tdev.run("check_metrics.py", "--gates-only", env={"EVOLUTION_TARGET": "/no/such/dir"})
    assert result.returncode == 3
    assert "no evolution target exists" in result.stdout
    assert tdev.run("check_metrics.py", "--gates-only", "--metrics-only").returncode == 3
    assert tdev.run("check_metrics.py", "--window", "forever").returncode == 3


@pytest.mark.usefixtures("utc")
def test_check_metrics_key_metrics_alert_is_critical(tdev):
    week_of_history(tdev)
    result = tdev.run("check_metrics.py", "--metrics-only")
    assert result.returncode == 2  # error rate 10.53% > 10%
    line = next(line for line in result.stdout.splitlines() if line.startswith("error_rate"))
    assert "CRITICAL" in line and "10.5%" in line and "2/19 tasks failed" in line and "Review error logs" in line
    assert "WARNING" in next(line for line in result.stdout.splitlines() if line.startswith("success_rate"))


# ---- health checks -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("utc")
def test_health_checks_for_metrics_and_gates(tdev, clean_target, monkeypatch):
    week_of_history(tdev)
    monkeypatch.setenv("EVOLUTION_TARGET", str(clean_target))
    from lib import health

    checks = [c for c in health.select({"full"}) if c.area == "metrics"]
    assert {c.name for c in checks} == {"metric_success_rate", "metric_cycle_time", "metric_cost_per_cycle",
                                        "metric_pr_merge_rate", "metric_error_rate", "quality_gates"}
    assert all(c.timeout for c in checks)
    results = {r.name: r for r in health.run(checks)}
    assert results["metric_success_rate"].status == "warning"
    assert results["metric_error_rate"].status == "critical"
    assert results["metric_cycle_time"].status == "ok"
    assert results["quality_gates"].status == "ok" and "passed" in results["quality_gates"].summary
    monkeypatch.setenv("EVOLUTION_TARGET", "/no/such/target")
    (missing,) = health.run([c for c in checks if c.name == "quality_gates"])
    assert missing.status == "warning" and "no evolution target exists" in missing.summary


# ---- conventions ---------------------------------------------------------------------------------------

MY_SCRIPTS = {
    "show_metrics.py": "python scripts/show_metrics.py --trend --days 7",
    "check_metrics.py": "python scripts/check_metrics.py --verbose",
    "adjust_gates.py": "python scripts/adjust_gates.py --metric docstring --threshold 75",
    "export_metrics.py": "python scripts/export_metrics.py --format prometheus",
    "setup_monitoring.py": "python scripts/setup_monitoring.py",
    "sla_report.py": "python scripts/sla_report.py --month 2024-01",
    "analyze_performance.py": "python scripts/analyze_performance.py --week",
    "generate_monthly_report.py": "python scripts/generate_monthly_report.py",
}


@pytest.mark.parametrize("script", sorted(MY_SCRIPTS))
def test_help_has_the_runbook_example_and_imports_no_boto3(tdev, script):
    result = tdev.run(script, "--help", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0
    assert MY_SCRIPTS[script] in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time")}
    assert not {"boto3", "botocore", "requests", "matplotlib", "prometheus_client"} & imported


@pytest.mark.usefixtures("utc")
def test_sparkline_on_a_terminal(tdev):
    import os
    import pty
    import subprocess
    import sys

    week_of_history(tdev)
    leader, follower = pty.openpty()
    try:
        process = subprocess.run([sys.executable, "scripts/show_metrics.py", "--trend", "--days", "7"],
                                 stdout=follower, stderr=subprocess.PIPE, env=tdev.env, cwd=ROOT,
                                 timeout=60, check=False)
        os.close(follower)
        output = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(leader)
    assert process.returncode == 0
    text = output.decode()
    assert "DAILY" in text
    line = next(line for line in text.splitlines() if line.startswith("Evolution Success Rate"))
    assert line.rstrip().endswith("█▅ █▁██")  # 100, 50, none, 100, 0, 100, 100
