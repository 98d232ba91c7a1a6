"""show_failure, analyze_failure, trace_execution, generate_failure_report: units and end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from evolution_seed import add_evolution, failed_evolution

from lib.errors import NotFound, UsageError
from lib.insight import diagnose, tracing
from tests.conftest import EMPTY_PLAN_AGENT

# ---- units -------------------------------------------------------------------------------------

@pytest.mark.parametrize("error, expected", [
    ("timeout: ./agent did not answer within 5s", "timeout"),
    ("exit-code: ./agent exited with 3: boom", "exit-code"),
    ("implement failed (task task-1-a): bad-output: ./agent printed no JSON document", "bad-output"),
    ("gates-failed: cycle 1: docstring 40 vs min 80", "gates-failed"),
    ("cleaned up: process gone", "killed"),
    ("killed: force stop by operator", "killed"),
    ("runner: cannot start: boom", "runner"),
    ("something odd", "other"),
    (None, ""),
])
def test_error_class(error, expected):
    assert diagnose.error_class(error) == expected


def test_check_id_points_to_the_right_command():
    assert diagnose.check_id(" task-20240101000000-abc123 ", "task") == "task-20240101000000-abc123"
    with pytest.raises(UsageError) as wrong:
        diagnose.check_id("evo-20240101000000-abc123", "task")
    assert "analyze_failure.py --id evo-20240101000000-abc123" in str(wrong.value)
    with pytest.raises(UsageError):
        diagnose.check_id("12; rm -rf /", "evolution")


def test_log_excerpt_keeps_the_phase_with_context_and_masks_secrets():
    lines = [f"2024-01-01T00:00:0{i}+00:00 INFO [cycle 1/1 research] line {i}" for i in range(6)]
    lines += ["2024-01-01T00:01:00+00:00 INFO [cycle 1/1 implement] start",
              "2024-01-01T00:01:01+00:00 ERROR [cycle 1/1 implement] failed token=ghp_abcdefghijklmnopqrstuvwx0123"]
    lines += [f"2024-01-01T00:02:0{i}+00:00 INFO [cycle 1/1 evaluate] after {i}" for i in range(6)]
    excerpt = diagnose.log_excerpt(lines, 1, "implement", context=2)
    assert excerpt[0].endswith("line 4") and excerpt[-1].endswith("after 1")
    assert "ghp_" not in "\n".join(excerpt) and "***" in excerpt[3]
    long = diagnose.log_excerpt([f"t INFO [cycle 1/1 plan] {i}" for i in range(100)], 1, "plan", limit=10)
    assert len(long) == 10 and "earlier lines not shown" in long[0] and long[-1].endswith(" 99")
    assert diagnose.log_excerpt(lines, 2, "plan", limit=3) == lines[-3:]


def test_similar_failures_match_phase_and_class_but_not_the_same_evolution(store):
    failed_evolution(store, started=datetime.now(UTC) - timedelta(days=40))  # outside the 30-day window
    first = failed_evolution(store, started=datetime.now(UTC) - timedelta(days=2))
    failed_evolution(store, started=datetime.now(UTC) - timedelta(days=1), error="timeout: ./agent did not answer")
    failed_evolution(store, fail_phase="plan", error="exit-code: ./planner exited with 1: x",
                     started=datetime.now(UTC) - timedelta(hours=5))
    latest = failed_evolution(store)
    failure = diagnose.failure_of(latest["evolution"], latest["task"])
    similar = diagnose.similar_failures(store, failure, latest["evolution"]["id"])
    assert similar["count"] == 1 and similar["looked_at"] == 4
    assert similar["recent"][0]["task_id"] == first["task"]["id"]


def test_next_steps_by_class(store, tdev):
    tdev.write_config("agents", "agents:\n"
                      "  - {name: refactor-agent, phase: implement, runtime: command, command: [./agents/refactor]}\n"
                      "  - {name: research-agent, phase: research, runtime: lambda, function_name: research-fn}\n")
    seeded = failed_evolution(store)
    failure = diagnose.failure_of(seeded["evolution"], seeded["task"])
    steps = "\n".join(diagnose.next_steps(failure, seeded["evolution"], seeded["task"]))
    assert "Replay the call by hand" in steps and "| ./agents/refactor" in steps
    assert f"generate_failure_report.py --id {seeded['task']['id']}" in steps
    lam = failed_evolution(store, fail_phase="research", error="agent-error: research-agent: throttled")
    steps = "\n".join(diagnose.next_steps(diagnose.failure_of(lam["evolution"], lam["task"]), lam["evolution"],
                                          lam["task"]))
    assert "aws logs tail /aws/lambda/research-fn --since 1h" in steps


def test_gates_failed_without_a_failed_task_points_at_the_gate(store):
    evo = add_evolution(store, status="failed", error="gates-failed: cycle 1: docstring 40.0 vs min 80")
    report = diagnose.analyze(store, evo["id"])
    assert report["failure"]["phase"] == "gate" and report["failure"]["error_class"] == "gates-failed"
    assert any("adjust_gates.py" in step for step in report["next_steps"])


def test_span_tree_links_children_and_keeps_orphans():
    spans = [
        {"span_id": "a", "parent_id": None, "name": "root", "start": "2024-01-01T00:00:00.000+00:00",
         "end": "2024-01-01T00:00:10.000+00:00", "status": "ok", "attributes": {}},
        {"span_id": "c", "parent_id": "a", "name": "second", "start": "2024-01-01T00:00:05.000+00:00",
         "end": "2024-01-01T00:00:06.500+00:00", "status": "error", "attributes": {"task_id": "task-2"}},
        {"span_id": "b", "parent_id": "a", "name": "first", "start": "2024-01-01T00:00:01.000+00:00",
         "end": None, "status": None, "attributes": {}},
        {"span_id": "d", "parent_id": "gone", "name": "lost", "start": "2024-01-01T00:00:02.000+00:00",
         "end": "2024-01-01T00:00:03.000+00:00", "status": "ok", "attributes": {}},
    ]
    roots = tracing.build(spans, now=datetime(2024, 1, 1, 0, 0, 4, tzinfo=UTC))
    assert [r["name"] for r in roots] == ["root", "lost"]
    assert [c["name"] for c in roots[0]["children"]] == ["first", "second"]
    assert roots[0]["children"][0]["duration_ms"] == 3000 and roots[0]["children"][1]["duration_ms"] == 1500
    rows = tracing.rows({"started_at": "2024-01-01T00:00:00+00:00", "spans": roots})
    assert [r["tree"] for r in rows] == ["root", "├─ first", "└─ second", "lost"]
    assert rows[1]["duration"].endswith("(running)") and rows[2]["offset"] == "+5s"
    assert tracing.fmt_seconds(0.25) == "0.25s" and tracing.fmt_seconds(125) == "2m05s"
    assert tracing.fmt_seconds(3720) == "1h02m" and tracing.fmt_seconds(2 * 86400 + 7200) == "2d02h"


def test_trace_resolves_task_and_evolution_ids(store):
    seeded = failed_evolution(store)
    assert tracing.resolve(store, seeded["task"]["id"]) == seeded["trace_id"]
    assert tracing.resolve(store, seeded["evolution"]["id"]) == seeded["trace_id"]
    with pytest.raises(NotFound):
        tracing.resolve(store, "task-20240101000000-000000")
    with pytest.raises(UsageError):
        tracing.resolve(store, "not-a-trace")


# ---- end to end -------------------------------------------------------------------------------

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
