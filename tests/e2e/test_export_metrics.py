"""export_metrics.py: Prometheus / OpenMetrics text parsed back with prometheus_client, textfile-collector
files, JSON, and CloudWatch put_metric_data on moto."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from metrics_seed import seed_history, week_of_history, week_with_unchanged
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus


def samples(text: str, parser=parse_prometheus) -> dict:
    """{(name, frozenset(labels)): value} of every sample."""
    return {(s.name, frozenset(s.labels.items())): s.value for family in parser(text) for s in family.samples}


@pytest.mark.usefixtures("utc")
def test_prometheus_text_parses_with_the_figures(tdev):
    week_of_history(tdev)
    tdev.env["EVOLUTION_TARGET"] = "/no/such/target"
    result = tdev.run("export_metrics.py", "--format", "prometheus")
    assert result.returncode == 0, result.stderr
    found = samples(result.stdout)
    assert found[("tdeveloper_evolution_success_ratio", frozenset())] == 0.75
    assert found[("tdeveloper_cycle_time_seconds", frozenset())] == 2.56 * 3600
    assert found[("tdeveloper_cost_per_cycle_usd", frozenset())] == 8.89
    assert found[("tdeveloper_error_ratio", frozenset())] == 0.1053
    assert ("tdeveloper_pr_merge_ratio", frozenset()) not in found  # no data: no sample
    state = {dict(labels)["metric"]: value for (name, labels), value in found.items()
             if name == "tdeveloper_key_metric_state"}
    assert state == {"success_rate": 1, "cycle_time": 0, "cost_per_cycle": 0, "error_rate": 2}
    assert found[("tdeveloper_key_metric_threshold", frozenset({("metric", "success_rate"), ("level", "alert")}))] \
        == 0.7
    assert found[("tdeveloper_metrics_window_seconds", frozenset())] == 7 * 86400
    stamp = found[("tdeveloper_metrics_last_success_timestamp_seconds", frozenset())]
    assert abs(stamp - datetime.now(UTC).timestamp()) < 3600


@pytest.mark.usefixtures("utc")
def test_unchanged_evolutions_lower_the_exported_success_ratio(tdev):
    week_with_unchanged(tdev)
    tdev.env["EVOLUTION_TARGET"] = "/no/such/target"
    found = samples(tdev.run("export_metrics.py", "--format", "prometheus").stdout)
    assert found[("tdeveloper_evolution_success_ratio", frozenset())] == 0.4
    document = json.loads(tdev.run("export_metrics.py", "--format", "json").stdout)
    rate = next(m for m in document["metrics"] if m["name"] == "success_rate")
    assert (rate["value"], rate["metric"], rate["basis"]) == (40.0, "EvolutionSuccessRate",
                                                              "2/5 evolutions succeeded, 2 unchanged")


def test_openmetrics_and_json(tdev):
    seed_history(tdev, [], meta={"security-findings": {"count": 3, "time": "2024-01-01T00:00:00+00:00"}})
    result = tdev.run("export_metrics.py", "--format", "openmetrics")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("# EOF\n")
    found = samples(result.stdout, parse_openmetrics)
    assert found[("tdeveloper_security_gate_failures", frozenset())] == 3
    document = json.loads(tdev.run("export_metrics.py", "--format", "json").stdout)
    assert document["security_gate_failures"] == 3
    assert [m["metric"] for m in document["metrics"]] == [
        "EvolutionSuccessRate", "CycleTime", "CostPerCycle", "PRMergeRate", "ErrorRate"]


def test_textfile_collector_output(tdev, tmp_path):
    folder = tmp_path / "textfile"
    folder.mkdir()
    target = folder / "tdeveloper.prom"
    target.write_text("stale\n")
    target.chmod(0o600)
    result = tdev.run("export_metrics.py", "--format", "prometheus", "--output", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert ("tdeveloper_metrics_last_success_timestamp_seconds", frozenset()) in samples(target.read_text())
    assert [p.name for p in folder.iterdir()] == ["tdeveloper.prom"]  # the temporary file was renamed


def test_security_gate_findings_without_an_audit(tdev, tmp_path):
    target = tmp_path / "risky"
    target.mkdir()
    (target / "app.py").write_text('"""App."""\nimport pickle\n\n\ndef load(data):\n    """Load."""\n'
                                   '    return pickle.loads(data)\n\n\ndef run(code):\n    """Run."""\n'
                                   '    return eval(code)\n')
    document = json.loads(tdev.run("export_metrics.py", "--format", "json",
                                   env={"EVOLUTION_TARGET": str(target)}).stdout)
    assert document["security_gate_failures"] == 2  # S301 pickle, S307 eval


@pytest.mark.usefixtures("utc")
def test_cloudwatch_put_metric_data_on_moto(tdev, aws):
    week_of_history(tdev)
    seed_history(tdev, [], meta={"security-findings": 2})
    dry = tdev.run("export_metrics.py", "--format", "cloudwatch", "--dry-run")
    assert dry.returncode == 0 and "would put 5 metrics" in dry.stderr
    cloudwatch = boto3.client("cloudwatch")
    assert cloudwatch.list_metrics(Namespace="TDeveloper")["Metrics"] == []
    result = tdev.run("export_metrics.py", "--format", "cloudwatch", "--verbose")
    assert result.returncode == 0, result.stderr
    names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="TDeveloper")["Metrics"]}
    assert names == {"EvolutionSuccessRate", "CycleTime", "CostPerCycle", "ErrorRate", "SecurityGateFailures"}
    now = datetime.now(UTC)

    def value(name: str) -> tuple[float, str]:
        (point,) = cloudwatch.get_metric_statistics(
            Namespace="TDeveloper", MetricName=name, StartTime=now - timedelta(hours=1),
            EndTime=now + timedelta(hours=1), Period=3600, Statistics=["Average"])["Datapoints"]
        return point["Average"], point["Unit"]

    assert value("EvolutionSuccessRate") == (75.0, "Percent")
    assert value("CycleTime") == (2.56, "None")
    assert value("ErrorRate") == (10.53, "Percent")
    assert value("SecurityGateFailures") == (2.0, "Count")
    audit = [json.loads(line) for line in (tdev.history / "audit.log").read_text().splitlines()]
    assert audit[-1]["result"] == "ok" and "SecurityGateFailures" in audit[-1]["metrics"]
    assert "EvolutionSuccessRate" in result.stdout


def test_cloudwatch_refuses_output(tdev, aws):
    result = tdev.run("export_metrics.py", "--format", "cloudwatch", "--output", "x.prom")
    assert result.returncode == 2 and "--output does not apply" in result.stderr


def test_cloudwatch_without_credentials_is_one_error_line(tdev):
    seed_history(tdev, [], meta={"security-findings": 1})
    result = tdev.run("export_metrics.py", "--format", "cloudwatch")
    assert result.returncode == 1
    assert result.stderr.startswith("error: put metric data in CloudWatch namespace TDeveloper: no AWS credentials")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tdev.history / "audit.log").exists()


def test_a_second_export_waits_for_none(tdev):
    from lib import cli

    with cli.lock("export_metrics-prometheus"):
        result = tdev.run("export_metrics.py")
    assert result.returncode == 1 and "already running" in result.stderr
