"""Refused attempts mined into failure patterns that name what failed: hunks, test ids, gates."""

from __future__ import annotations

import json

from lib.quality import patterns, refusals
from lib.store.sqlite import SQLiteStore

PATCH = """diff --git a/pkg/sample.py b/pkg/sample.py
--- a/pkg/sample.py
+++ b/pkg/sample.py
@@ -4,3 +4,3 @@ import os
 def add(a, b):
-    return a+b
+    return a-b
 # end
@@ -20 +20 @@ class Greeter:
-        pass
+        return None
diff --git a/pkg/new.py b/pkg/new.py
new file mode 100644
--- /dev/null
+++ b/pkg/new.py
@@ -0,0 +1,2 @@
+x = 1
+y = 2
"""
TEST_ID = "pkg/tests/test_sample.py::TestAdd::test_add[1-2]"
GATES = "gates-failed: docstring 42.5->30.0 (must be >= 80.0 or no worse); lint 3->5 (must be <= 0)"


def test_hunks_name_the_base_lines_each_change_replaces():
    assert refusals.hunks(PATCH) == [{"path": "pkg/sample.py", "start": 4, "end": 6},
                                     {"path": "pkg/sample.py", "start": 20, "end": 20},
                                     {"path": "pkg/new.py", "start": 1, "end": 2}]
    assert refusals.hunks("not a patch") == []


def test_test_ids_gates_and_refusal_lines():
    error = f"tests failed: {TEST_ID}, pkg/tests/test_other.py::test_b (exit 1: 2 failed)"
    assert refusals.test_ids(error) == [TEST_ID, "pkg/tests/test_other.py::test_b"]
    assert refusals.test_ids(["a.py::t"], f"FAILED {TEST_ID} - assert 1 == 2") == ["a.py::t", TEST_ID]
    assert refusals.gates(GATES) == [{"name": "docstring", "before": 42.5, "after": 30.0},
                                     {"name": "lint", "before": 3.0, "after": 5.0}]
    assert refusals.gates("gates-failed: x", [{"name": "lint", "before": 1, "after": 2, "rule": "r"}]) == [
        {"name": "lint", "before": 1, "after": 2}]
    assert refusals.refusal_line("3 attempts refused; last: " + GATES) == GATES
    assert refusals.refusal_line("implement failed (task task-1-a): bad-patch: does not apply") == (
        "bad-patch: does not apply")
    assert refusals.refusal_line("timeout: agent did not finish within 5s") is None
    assert refusals.refusal_line(None) is None


def test_a_feedback_entry_of_an_edits_reply_names_its_files():
    entry = {"attempt": 1, "error": "syntax-error: pkg/a.py: invalid syntax (line 3)",
             "patch": json.dumps({"edits": [{"path": "pkg/a.py", "search": "x", "replace": "y("}]}),
             "tests": None, "gates": []}
    refused = refusals.from_feedback(entry)
    assert (refused.files, refused.hunks, refused.tests) == (["pkg/a.py"], [], [])


def seeded(tmp_path):
    """A history: evolution 1 refused twice (attempt 1 in the feedback of attempt 2, attempt 2 in its
    error); evolution 2 refused a bad patch as a failed task (today's runner)."""
    store = SQLiteStore.in_memory()
    history = tmp_path / "history"

    def task(evolution_id: str, index: int, phase: str, status: str, error, artifact: dict, attempt: int = 1):
        task_id = f"task-{evolution_id}-{index}"
        store.create_task({"id": task_id, "evolution_id": evolution_id, "cycle": 1, "phase": phase, "agent": "a",
                           "status": status, "error": error, "started_at": f"2024-01-0{index}T00:00:00+00:00"})
        path = history / evolution_id / "tasks" / f"{task_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"input": {"attempt": attempt, **artifact.pop("input", {})}, **artifact}))

    store.create_evolution({"id": "evo-1", "target": "/repo/pkg", "focus": "docs", "cycles": 1, "status": "failed",
                            "started_at": "2024-01-01T00:00:00+00:00",
                            "error": "2 attempts refused; last: " + GATES})
    task("evo-1", 1, "implement", "succeeded", None, {"output": {"patch": PATCH}})
    feedback = [{"attempt": 1, "error": f"tests failed: {TEST_ID} (exit 1)", "patch": PATCH,
                 "tests": {"exit_code": 1, "failed": [TEST_ID], "output_tail": "..."}, "gates": []},
                "not an entry", {"attempt": "2", "error": "tests failed: x.py::t", "gates": "none"}]
    task("evo-1", 2, "implement", "succeeded", None,
         {"input": {"feedback": feedback}, "output": {"files": [{"path": "pkg/sample.py", "content": "x = 1\n"}]}},
         attempt=2)
    store.create_evolution({"id": "evo-2", "target": "/repo/pkg", "focus": "docs", "cycles": 1, "status": "failed",
                            "started_at": "2024-01-02T00:00:00+00:00",
                            "error": "implement failed (task task-evo-2-3): bad-patch: does not apply"})
    task("evo-2", 3, "implement", "failed", "bad-patch: does not apply", {"output": {"patch": PATCH}})
    store.create_task({"id": "task-evo-2-4", "evolution_id": "evo-2", "cycle": 1, "phase": "implement",
                       "agent": "a", "status": "succeeded", "started_at": "2024-01-04T00:00:00+00:00"})
    (history / "evo-2" / "tasks" / "task-evo-2-4.json").write_text("[1, 2]")  # not an artifact: skipped
    return store, history


def test_mining_names_the_hunks_tests_and_gates_of_each_refused_attempt_once(tmp_path):
    store, history = seeded(tmp_path)
    mined = {p["signature"]["error_class"]: p for p in patterns.mine(store, history) if p["kind"] == "failure"}
    assert sorted(mined) == ["bad-patch", "gates-failed", "tests failed"]
    tests_failed = mined["tests failed"]["signature"]
    assert tests_failed["tests"] == [TEST_ID] and tests_failed["hunks"] == refusals.hunks(PATCH)
    assert tests_failed["files"] == ["pkg/new.py", "pkg/sample.py"] and tests_failed["phase"] == "implement"
    gates = mined["gates-failed"]["signature"]
    assert gates["gates"] == [{"name": "docstring", "before": 42.5, "after": 30.0},
                              {"name": "lint", "before": 3.0, "after": 5.0}]
    assert gates["files"] == ["pkg/sample.py"] and "hunks" not in gates  # the last attempt sent whole files
    assert mined["bad-patch"]["signature"]["hunks"] == refusals.hunks(PATCH)
    assert all(p["hits"] == 1 for p in mined.values())  # evo-2's failed task is not counted again from its error
    assert "(docstring 42.5->30.0, lint 3.0->5.0)" in patterns.describe(mined["gates-failed"])
    assert TEST_ID in patterns.describe(mined["tests failed"])

    merged = patterns.merge(store, patterns.mine(store, history))
    assert len(merged["new"]) == 3
    given = {p["signature"]["error_class"] for p in patterns.for_target(store, "pkg")}
    assert given == {"bad-patch", "gates-failed", "tests failed"}
    assert patterns.for_target(store, "other") == []


def test_a_recurring_refusal_counts_up_and_keeps_the_newest_gate_values(tmp_path):
    store, history = seeded(tmp_path)
    patterns.merge(store, patterns.mine(store, history))
    store.create_evolution({"id": "evo-3", "target": "/repo/pkg", "focus": "docs", "cycles": 1, "status": "failed",
                            "started_at": "2024-01-03T00:00:00+00:00", "error": GATES.replace("30.0", "25.0")})
    store.create_task({"id": "task-evo-3-1", "evolution_id": "evo-3", "cycle": 1, "phase": "implement",
                       "agent": "a", "status": "succeeded", "started_at": "2024-01-03T00:00:01+00:00"})
    artifact = history / "evo-3" / "tasks" / "task-evo-3-1.json"
    artifact.parent.mkdir(parents=True)
    artifact.write_text(json.dumps({"input": {"attempt": 1},
                                    "output": {"files": [{"path": "pkg/sample.py", "content": "x = 2\n"}]}}))
    report = patterns.merge(store, patterns.mine(store, history))
    [updated] = report["updated"]
    assert (updated["hits_before"], updated["hits"], updated["source"]) == (1, 2, "evo-3")
    assert updated["signature"]["gates"][0] == {"name": "docstring", "before": 42.5, "after": 25.0}


def test_the_attempt_log_is_read_once_for_every_reader(tmp_path):
    """analyze_failure and update_patterns read attempts.json through one function: [] when it is missing or
    broken, and only its attempts (objects) when it holds something else too."""
    assert refusals.attempt_log(tmp_path) == []
    (tmp_path / refusals.ATTEMPTS_FILE).write_text("{not json")
    assert refusals.attempt_log(tmp_path) == []
    (tmp_path / refusals.ATTEMPTS_FILE).write_text('[{"cycle": 1, "attempt": 1, "outcome": "refused"}, 3]')
    assert refusals.attempt_log(tmp_path) == [{"cycle": 1, "attempt": 1, "outcome": "refused"}]
