"""End to end (issue 10, misleading the engineer): a misspelled gate, a number out of its range, a bad
TIMEOUT_SECONDS and a key given twice are refused with one line naming the file or variable, the value
and what is allowed, before anything starts."""

from __future__ import annotations

import json

import pytest

from lib.store import open_store

GATES_MISSPELLED = """gates:
  docstrng:
    threshold: 50
    direction: min
"""


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    return lines[-1]


def gates_check(tdev, git_repo):
    return tdev.run("check_metrics.py", "--gates-only", "--target", str(git_repo / "packages/agents"))


def no_evolution_started(tdev) -> bool:
    return not (tdev.history / "state.db").exists() or not open_store().list_evolutions()


def test_misspelled_gate_is_refused_not_silently_off(tdev, git_repo):
    path = tdev.write_config("gates", GATES_MISSPELLED)
    metrics = gates_check(tdev, git_repo)
    line = one_error_line(metrics)
    assert metrics.returncode == 3
    assert str(path) in line and "'docstrng'" in line and "docstring, complexity, maintainability" in line
    health = json.loads(tdev.run("health_check.py", "--json").stdout)
    row = next(c for c in health["checks"] if c["name"] == "config")
    assert row["status"] == "critical" and "'docstrng'" in row["summary"]


@pytest.mark.parametrize("value", ["0", "-2"])
def test_heartbeat_out_of_range_is_refused_before_a_start(tdev, git_repo, value):
    path = tdev.write_config("settings", f"evolution:\n  heartbeat_seconds: {value}\n")
    result = tdev.run("run_evolution.py", "--target", str(git_repo / "packages/agents"))
    line = one_error_line(result)
    assert result.returncode == 1
    assert f"{path}: evolution.heartbeat_seconds: expected a number > 0 and <= 3600, got {value}" in line
    assert no_evolution_started(tdev)


def test_gate_threshold_out_of_its_range_is_refused(tdev, git_repo):
    path = tdev.write_config("gates", "gates:\n  coverage: {threshold: 170, direction: min}\n")
    line = one_error_line(gates_check(tdev, git_repo))
    assert f"{path}: gates.coverage.threshold: expected a number >= 0 and <= 100, got 170" in line


@pytest.mark.parametrize("value", ["abc", "0", "-5"])
def test_bad_timeout_seconds_is_refused_everywhere_it_is_read(tdev, git_repo, value):
    expected = f"TIMEOUT_SECONDS='{value}': expected a number of seconds > 0"
    env = {"TIMEOUT_SECONDS": value}
    start = tdev.run("run_evolution.py", "--target", str(git_repo / "packages/agents"), env=env)
    assert start.returncode == 2 and expected in one_error_line(start)
    assert no_evolution_started(tdev)
    for script in ("pre_evolution_check.py", "check_stuck_processes.py"):
        check = tdev.run(script, "--target", str(git_repo / "packages/agents"), env=env) if script.startswith(
            "pre") else tdev.run(script, env=env)
        assert check.returncode == 3 and expected in one_error_line(check), script


def test_good_timeout_seconds_is_shown_by_the_pre_check(tdev, git_repo):
    check = tdev.run("pre_evolution_check.py", "--target", str(git_repo / "packages/agents"), "--json",
                     env={"TIMEOUT_SECONDS": "90"})
    row = next(c for c in json.loads(check.stdout)["checks"] if c["name"] == "safety_limits_set")
    assert row["summary"].startswith("phase timeout 90s,")


def test_duplicated_yaml_key_names_file_key_and_both_lines(tdev, git_repo):
    path = tdev.write_config("gates", """gates:
  docstring:
    threshold: 50
    direction: min
  complexity: {threshold: 10, direction: max}
  docstring:
    threshold: 5
    direction: min
""")
    result = gates_check(tdev, git_repo)
    assert result.returncode == 3
    assert f"{path}: key 'docstring' appears twice, at lines 2 and 6" in one_error_line(result)
    adjust = tdev.run("adjust_gates.py", "--metric", "coverage", "--threshold", "60")
    assert adjust.returncode == 1 and f"{path}: key 'docstring' appears twice, at lines 2 and 6" in adjust.stderr
    settings = tdev.write_config("settings", "region: us-east-1\nregion: eu-west-1\n")
    health = json.loads(tdev.run("health_check.py", "--json").stdout)
    row = next(c for c in health["checks"] if c["name"] == "config")
    assert row["status"] == "critical" and f"{settings}: key 'region' appears twice, at lines 1 and 2" in row["summary"]


def test_duplicated_json_key_in_the_mcp_config_is_refused(tdev):
    tdev.mcp_config.parent.mkdir(parents=True)
    tdev.mcp_config.write_text('{\n  "mcpServers": {\n    "time": {"command": "a"},\n'
                               '    "time": {"command": "b"}\n  }\n}\n')
    result = tdev.run("-m mcp.test", "all")
    assert result.returncode == 3
    assert f"{tdev.mcp_config}: key 'time' appears twice, at lines 3 and 4" in one_error_line(result)
