"""show_evolution_history.py: time windows, filters, limits, JSON, bad input, DEBUG's traceback."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from evolution_seed import add_evolution

from lib.insight import history
from lib.store import open_store


@pytest.fixture
def seeded(tdev):
    store = open_store(create=True)
    now = datetime.now(UTC)
    records = {
        "old": add_evolution(store, started=now - timedelta(days=10), status="succeeded"),
        "recent_failed": add_evolution(store, started=now - timedelta(hours=3), status="failed",
                                       error="gates-failed: cycle 1: docstring 40 vs min 80",
                                       target="/srv/other"),
        "newest": add_evolution(store, started=now - timedelta(minutes=2), status="running", pr_number=42,
                                cost_usd=1.5),
    }
    yield records
    store.close()


def test_since_24h_lists_newest_first_with_the_table_columns(tdev, seeded):
    result = tdev.run("show_evolution_history.py", "--since", "24h")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "TARGET", "FOCUS", "STATUS", "CYCLE/PHASE", "STARTED", "ELAPSED", "TOKENS",
                                "COST", "PR", "TESTS", "ATTEMPTS", "IMPACT"]
    body = lines[2:]
    assert [line.split()[0] for line in body] == [seeded["newest"]["id"], seeded["recent_failed"]["id"]]
    assert "#42" in body[0] and "$1.50" in body[0]
    assert "2 evolutions: 1 running, 1 failed" in result.stderr


def test_since_a_date_an_iso_stamp_and_yesterday(tdev, seeded):
    eleven_days_ago = (datetime.now().astimezone() - timedelta(days=11)).date().isoformat()
    document = json.loads(tdev.run("show_evolution_history.py", "--since", eleven_days_ago, "--json").stdout)
    assert len(document) == 3
    stamp = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    document = json.loads(tdev.run("show_evolution_history.py", "--since", stamp, "--json").stdout)
    assert [r["id"] for r in document] == [seeded["newest"]["id"]]
    yesterday = tdev.run("show_evolution_history.py", "--since", "yesterday", "--json")
    assert yesterday.returncode == 0 and seeded["old"]["id"] not in yesterday.stdout


def test_json_is_an_array_of_plain_evolution_records(tdev, seeded):
    document = json.loads(tdev.run("show_evolution_history.py", "--since", "7d", "--json").stdout)
    assert isinstance(document, list) and document[0]["id"] == seeded["newest"]["id"]
    assert {"id", "target", "focus", "status", "pid", "host", "started_at", "heartbeat_at", "finished_at",
            "current_cycle", "current_phase", "cost_usd", "pr_number", "pr_url", "error"} <= document[0].keys()
    assert "progress" not in document[0]


@pytest.fixture
def outcomes(tdev):
    """One evolution per outcome, with what the runner records: files_changed, tests and the metrics."""
    store = open_store(create=True)
    now = datetime.now(UTC)
    before = {"docstring": 41.0, "lint": 12, "complexity": 3.5, "security": 0}
    records = {
        "docs": add_evolution(store, started=now - timedelta(minutes=50), focus="docs", files_changed=2,
                              tests="passed", attempts=2, metrics_before=before,
                              metrics_after={**before, "docstring": 57.0}),
        "quality": add_evolution(store, started=now - timedelta(minutes=40), target="/srv/q", files_changed=1,
                                 tests="not run", metrics_before=before, metrics_after={**before, "lint": 3}),
        "unchanged": add_evolution(store, started=now - timedelta(minutes=30), target="/srv/u", status="unchanged",
                                   focus="security", files_changed=0, metrics_before=before),
        "refused": add_evolution(store, started=now - timedelta(minutes=20), target="/srv/r", status="failed",
                                 files_changed=0, tests="failed", metrics_before=before, attempts=3,
                                 metrics_after={**before, "lint": 0}, error="tests failed: exit 1"),
    }
    yield records
    store.close()


def test_impact_and_tests_columns_and_the_unchanged_tally(tdev, outcomes):
    result = tdev.run("show_evolution_history.py", "--since", "2h")
    assert result.returncode == 0, result.stderr
    # the last three cells (TESTS, ATTEMPTS, IMPACT) of each row; cells are at least two spaces apart
    cells = {line.split()[0]: re.split(r"\s{2,}", line.strip())[-3:] for line in result.stdout.splitlines()[2:]}
    assert cells[outcomes["docs"]["id"]] == ["passed", "2", "2 files, docstring 41%->57%"]
    assert cells[outcomes["quality"]["id"]] == ["not run", "-", "1 file, lint 12->3"]  # docstring did not move
    assert cells[outcomes["unchanged"]["id"]] == ["-", "-", "no change"]
    assert cells[outcomes["refused"]["id"]] == ["failed", "3", "-"]  # a refused change had no impact
    assert "4 evolutions: 1 failed, 1 unchanged, 2 succeeded" in result.stderr


def test_json_keeps_the_store_fields_and_status_unchanged_filters(tdev, outcomes):
    document = json.loads(tdev.run("show_evolution_history.py", "--since", "2h", "--json").stdout)
    docs = next(r for r in document if r["id"] == outcomes["docs"]["id"])
    assert (docs["files_changed"], docs["tests"]) == (2, "passed")
    assert (docs["metrics_before"]["docstring"], docs["metrics_after"]["docstring"]) == (41.0, 57.0)
    assert "impact" not in docs
    only = json.loads(tdev.run("show_evolution_history.py", "--since", "2h", "--status", "unchanged", "--json").stdout)
    assert [r["id"] for r in only] == [outcomes["unchanged"]["id"]]
    assert only[0]["finished_at"] and only[0]["files_changed"] == 0


def test_status_target_and_limit_filters(tdev, seeded):
    failed = json.loads(tdev.run("show_evolution_history.py", "--since", "30d", "--status", "failed",
                                 "--json").stdout)
    assert [r["id"] for r in failed] == [seeded["recent_failed"]["id"]]
    several = json.loads(tdev.run("show_evolution_history.py", "--since", "30d", "--status", "failed",
                                  "--status", "succeeded", "--json").stdout)
    assert len(several) == 2
    other = json.loads(tdev.run("show_evolution_history.py", "--since", "30d", "--target", "/srv/other",
                                "--json").stdout)
    assert [r["id"] for r in other] == [seeded["recent_failed"]["id"]]
    limited = tdev.run("show_evolution_history.py", "--since", "30d", "--limit", "1", "--json")
    assert [r["id"] for r in json.loads(limited.stdout)] == [seeded["newest"]["id"]]
    assert "showing the newest 1" in limited.stderr
    everything = tdev.run("show_evolution_history.py", "--since", "30d", "--limit", "0", "--json")
    assert len(json.loads(everything.stdout)) == 3 and "showing" not in everything.stderr


def test_target_flag_resolves_relative_paths(tdev, tmp_path):
    folder = tmp_path / "work" / "pkg"
    folder.mkdir(parents=True)
    store = open_store(create=True)
    record = add_evolution(store, target=str(folder))
    result = tdev.run("show_evolution_history.py", "--since", "1d", "--target", "pkg", "--json", cwd=folder.parent)
    assert [r["id"] for r in json.loads(result.stdout)] == [record["id"]]


@pytest.mark.parametrize("args", [["--since", "last tuesday"], ["--since", "2024-13-45"], ["--limit", "-1"],
                                  ["--status", "exploded"]])
def test_bad_input_is_one_error_line_and_exit_2(tdev, args):
    result = tdev.run("show_evolution_history.py", *args)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_before_init_the_history_is_empty_not_an_error(tdev):
    result = tdev.run("show_evolution_history.py", "--since", "yesterday")
    assert result.returncode == 0 and result.stdout == ""
    assert "no evolution history yet" in result.stderr and "no evolutions since" in result.stderr
    assert json.loads(tdev.run("show_evolution_history.py", "--since", "today", "--json").stdout) == []


def test_debug_shows_the_traceback_and_log_level_is_honoured(tdev):
    quiet = tdev.run("show_evolution_history.py", "--since", "not-a-date")
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    loud = tdev.run("show_evolution_history.py", "--since", "not-a-date", env={"DEBUG": "true"})
    assert loud.returncode == 2 and "Traceback" in loud.stderr and "error: bad time" in loud.stderr


def test_tally_and_target_key(tmp_path, monkeypatch):
    assert history.tally([]) == "0 evolutions"
    assert history.tally([{"status": "failed"}]) == "1 evolution: 1 failed"
    assert history.tally([{"status": "unchanged"}, {"status": "succeeded"}, {"status": "unchanged"}]) == \
        "3 evolutions: 2 unchanged, 1 succeeded"
    monkeypatch.chdir(tmp_path)
    assert history.target_key("a/b") == str(tmp_path / "a" / "b") and history.target_key(None) is None
