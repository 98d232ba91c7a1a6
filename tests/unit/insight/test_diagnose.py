"""The diagnosis behind show_failure, analyze_failure, trace_execution and generate_failure_report
(lib/insight/diagnose.py, tracing.py), in process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from evolution_seed import add_evolution, failed_evolution

from lib import humanize
from lib.errors import NotFound, UsageError
from lib.insight import diagnose, tracing


@pytest.mark.parametrize("error, expected", [
    ("timeout: ./agent did not answer within 5s", "timeout"),
    ("exit-code: ./agent exited with 3: boom", "exit-code"),
    ("implement failed (task task-1-a): bad-output: ./agent printed no JSON document", "bad-output"),
    ("gates-failed: cycle 1: docstring 40 vs min 80", "gates-failed"),
    ("implement failed (task task-1-a): escaped: refactor-agent changed .git/hooks/post-commit outside its worktree",
     "escaped"),
    ("cleaned up: process gone", "killed"),
    ("killed: force stop by operator", "killed"),
    ("runner: cannot start: boom", "runner"),
    ("2 attempts refused; last: no candidate passed: candidate 1 (a): implement failed (task task-1-a): "
     "bad-patch: no; candidate 2 (b): tests failed: t::x (exit 1)", "bad-patch"),
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


def test_an_unchanged_evolution_is_no_failure_and_no_similar_one(store):
    """Only failed, stopped and killed evolutions are diagnosed; unchanged ones are final without a failure."""
    gate = add_evolution(store, status="failed", error="gates-failed: cycle 1: docstring 40.0 vs min 80")
    unchanged = add_evolution(store, status="unchanged", target="/srv/other", error=None)
    cut_short = {"id": "task-1", "status": "running", "phase": "implement"}
    assert diagnose.failing_task(unchanged, [cut_short]) is None
    assert diagnose.failing_task({**unchanged, "status": "killed"}, [cut_short]) == cut_short
    report = diagnose.analyze(store, unchanged["id"])
    assert report["failure"] is None and report["similar_failures"] is None
    similar = diagnose.similar_failures(store, diagnose.failure_of(gate, None), "evo-none")
    assert similar["looked_at"] == 1 and similar["recent"][0]["evolution_id"] == gate["id"]


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
    assert humanize.duration(0.25) == "0.25s" and humanize.duration(125) == "2m05s"
    assert humanize.duration(3720) == "1h02m" and humanize.duration(2 * 86400 + 7200) == "2d02h"


def test_trace_resolves_task_and_evolution_ids(store):
    seeded = failed_evolution(store)
    assert tracing.resolve(store, seeded["task"]["id"]) == seeded["trace_id"]
    assert tracing.resolve(store, seeded["evolution"]["id"]) == seeded["trace_id"]
    with pytest.raises(NotFound):
        tracing.resolve(store, "task-20240101000000-000000")
    with pytest.raises(UsageError):
        tracing.resolve(store, "not-a-trace")
