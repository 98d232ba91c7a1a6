"""show_failure.py, analyze_failure.py, trace_execution.py, generate_failure_report.py end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from evolution_seed import add_evolution, failed_evolution

from tests.conftest import EMPTY_PLAN_AGENT


def test_show_failure_prints_task_error_io_stderr_and_log(tdev, store):
    seeded = failed_evolution(store, stderr_tail=("loading", "boom token=ghp_abcdefghijklmnopqrstuvwx0123"))
    task = seeded["task"]
    result = tdev.run("show_failure.py", "--id", task["id"])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Task {task['id']}: failed" in out and "Error (exit-code):" in out
    assert "exited with 3: boom" in out and '"phase": "implement"' in out
    assert "Stderr tail (2 lines):" in out and "ghp_" not in out
    assert "[cycle 1/1 implement] refactor-agent (command) started" in out
    assert "What to do next:" in out
    document = json.loads(tdev.run("show_failure.py", "--id", task["id"], "--json").stdout)
    assert document["id"] == task["id"] and document["error_class"] == "exit-code"
    assert document["artifact"]["input"]["task_id"] == task["id"]
    assert document["artifact"]["stderr_tail"][-1] == "boom token=***"


def test_analyze_failure_names_phase_task_error_log_similar_and_next_steps(tdev, store):
    older = failed_evolution(store, started=datetime.now(UTC) - timedelta(days=1))
    seeded = failed_evolution(store)
    evo, task = seeded["evolution"], seeded["task"]
    result = tdev.run("analyze_failure.py", "--id", evo["id"])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Evolution {evo['id']}: failed" in out
    assert "phase    implement (cycle 1)" in out and f"task     {task['id']} (agent refactor-agent)" in out
    assert "class    exit-code" in out
    assert "Log around the failure:" in out and "ERROR [cycle 1/1 implement]" in out
    assert "1 similar (phase implement, class exit-code)" in out and older["evolution"]["id"] in out
    assert "What to do next:" in out and "show_failure.py --id" in out
    document = json.loads(tdev.run("analyze_failure.py", "--id", evo["id"], "--json").stdout)
    assert document["id"] == evo["id"] and document["status"] == "failed"
    assert [t["phase"] for t in document["tasks"]] == ["research", "plan", "implement"]
    for item in document["tasks"]:
        assert {"id", "phase", "status", "error", "trace_id"} <= item.keys()
    assert document["failure"]["task_id"] == task["id"] and document["similar_failures"]["count"] == 1


def test_analyze_a_succeeded_evolution_says_so(tdev, store):
    evo = add_evolution(store)
    result = tdev.run("analyze_failure.py", "--id", evo["id"])
    assert result.returncode == 0 and "No failure: the evolution succeeded." in result.stdout


def test_analyze_an_unchanged_evolution_finds_no_failure(tdev, store):
    evo = add_evolution(store, status="unchanged", focus="docs", files_changed=0)
    result = tdev.run("analyze_failure.py", "--id", evo["id"])
    assert result.returncode == 0, result.stderr
    assert "No failure: the evolution ended unchanged" in result.stdout
    assert "Failure:" not in result.stdout and "What to do next:" not in result.stdout
    document = json.loads(tdev.run("analyze_failure.py", "--id", evo["id"], "--json").stdout)
    assert (document["status"], document["failure"], document["next_steps"]) == ("unchanged", None, [])


def test_trace_execution_prints_the_indented_tree(tdev, store):
    seeded = failed_evolution(store)
    result = tdev.run("trace_execution.py", "--trace-id", seeded["trace_id"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"trace {seeded['trace_id']} (evolution {seeded['evolution']['id']})")
    assert any(line.startswith("└─ cycle 1") for line in lines)
    assert any(line.startswith("   └─ implement refactor-agent") and "error" in line for line in lines)
    document = json.loads(tdev.run("trace_execution.py", "--trace-id", seeded["trace_id"], "--json").stdout)
    cycle = document["spans"][0]["children"][0]
    assert [c["name"] for c in cycle["children"]] == ["research research-agent", "plan planner-agent",
                                                       "implement refactor-agent"]
    assert cycle["children"][0]["duration_ms"] == 3000


def test_generate_failure_report_writes_markdown_and_keeps_an_existing_file(tdev, store, tmp_path):
    failed_evolution(store, started=datetime.now(UTC) - timedelta(days=1))
    seeded = failed_evolution(store)
    task = seeded["task"]
    report = tmp_path / "report.md"
    result = tdev.run("generate_failure_report.py", "--id", task["id"], "--output", str(report))
    assert result.returncode == 0, result.stderr
    text = report.read_text()
    for heading in ("# Incident: implement failed", "## Summary", "## Timeline", "## Error", "## Log excerpt",
                    "## Similar failures", "## Next steps"):
        assert heading in text
    assert f"`{task['id']}` (failed)" in text and "← this task" in text and "1 similar" in text
    report.write_text("keep me")
    again = tdev.run("generate_failure_report.py", "--id", task["id"], "--output", str(report))
    assert again.returncode == 1 and again.stderr.startswith("error: ") and "--force" in again.stderr
    assert report.read_text() == "keep me"
    forced = tdev.run("generate_failure_report.py", "--id", task["id"], "--output", str(report), "--force")
    assert forced.returncode == 0 and report.read_text().startswith("# Incident")
    assert not list(tmp_path.glob(".report.md.*"))


@pytest.mark.parametrize("script, flag, value, code", [
    ("show_failure.py", "--id", "task-20240101000000-000000", 1),
    ("show_failure.py", "--id", "bogus", 2),
    ("analyze_failure.py", "--id", "evo-20240101000000-000000", 1),
    ("analyze_failure.py", "--id", "task-20240101000000-000000", 2),
    ("trace_execution.py", "--trace-id", "0" * 32, 1),
    ("trace_execution.py", "--trace-id", "xyz", 2),
    ("generate_failure_report.py", "--id", "task-20240101000000-000000", 1),
])
def test_unknown_and_malformed_ids_give_one_error_line(tdev, store, script, flag, value, code):
    extra = ["--output", str(tdev.base / "r.md")] if script.startswith("generate") else []
    result = tdev.run(script, flag, value, *extra)
    assert result.returncode == code
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_failing_command_agent_is_diagnosed_end_to_end(tdev, git_repo):
    """The real runner, a command agent that exits non-zero: analyze_failure and show_failure say so."""
    agent = tdev.shell_agent("broken_agent", "echo 'cannot refactor: disk on fire' >&2\nexit 3\n")
    planner = tdev.shell_agent("planner_agent", EMPTY_PLAN_AGENT)
    tdev.use_agents({"plan": [planner], "implement": [agent]})
    run = tdev.run("run_evolution.py", "--target", str(git_repo / "packages" / "agents"), "--cycles", "1",
                   "--focus", "quality", "--monitor", "--force", timeout=180)
    evolution_id = run.stdout.split()[0]
    assert evolution_id.startswith("evo-"), run.stdout + run.stderr
    document = json.loads(tdev.run("analyze_failure.py", "--id", evolution_id, "--json").stdout)
    assert document["status"] == "failed" and document["failure"]["phase"] == "implement", document["error"]
    assert document["failure"]["error_class"] == "exit-code"
    assert "exited with 3" in document["failure"]["error"]
    shown = tdev.run("show_failure.py", "--id", document["failure"]["task_id"])
    assert "cannot refactor: disk on fire" in shown.stdout
    traced = tdev.run("trace_execution.py", "--trace-id", document["failure"]["trace_id"])
    assert traced.returncode == 0 and "implement refactor-agent" in traced.stdout
