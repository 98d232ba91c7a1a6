"""Unit tests of the reference agents' runtime: each call is a child process under the process rules of
DESIGN §5 (its own session, its task id), whose handler failure is the agent's error, not a crash."""

from __future__ import annotations

from lib.agents import local


def payload(tmp_path, phase: str, **fields) -> dict:
    return {"evolution_id": "evo-unit", "task_id": "task-unit-local", "phase": phase, "worktree": str(tmp_path),
            "target": ".", "focus": "quality", "files": [], "context": {}, "patterns": [], **fields}


def runtime() -> local.LocalRuntime:
    return local.LocalRuntime({"name": "evaluator-agent", "phase": "evaluate", "runtime": "local"})


def test_a_phase_runs_in_a_child_process_and_answers_the_contract(tmp_path):
    (tmp_path / "ok.py").write_text("x = 1\n")
    (tmp_path / "broken.py").write_text("def f(:\n")
    reply = runtime().invoke(payload(tmp_path, "evaluate", context={"runner": {"files_changed": ["ok.py",
                                                                                                 "broken.py"]}}), 120)
    assert reply["status"] == "ok" and reply["output"]["verdict"] == "fail"
    assert reply["output"]["notes"].startswith("does not parse: broken.py:1: ")
    assert (reply["cost_usd"], reply["tokens"], reply["stderr_tail"]) == (0.0, 0, [])


def test_a_handler_failure_is_the_agents_error(tmp_path):
    reply = runtime().invoke(payload(tmp_path, "implement", focus="no-such-focus", files=[{"path": "a.py"}]), 120)
    assert reply["status"] == "error" and reply["error"] == "KeyError: 'no-such-focus'"
