"""Learning across evolutions end to end: a refused change is mined by update_patterns.py into a failure
pattern naming its hunk, the test it broke or the gate it failed, and the next evolution of the same
target is given that pattern."""

from __future__ import annotations

import json
import sys

from evolution_agents import MINIMAL, PHASES, SAMPLE, TARGET, diff, evolve, reply_agent

from lib.quality import refusals
from lib.store.sqlite import SQLiteStore
from tests.conftest import SAMPLE_MODULE, git

TEST_ID = f"{TARGET}/tests/test_sample.py::test_add"
TESTS = '''import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parents[1]))

from sample import add  # noqa: E402


def test_add():
    assert add(1, 2) == 3
'''
#: A test command that ends its output with the failing test ids, as the runner reports a run by its tail.
TEST_RUNNER = f'''import subprocess, sys
run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=no", "-rf",
                      "{TARGET}"], capture_output=True, text=True)
print(run.stdout)
print("; ".join(line for line in run.stdout.splitlines() if line.startswith("FAILED")))
sys.exit(run.returncode)
'''
BREAKS_ADD = diff(SAMPLE, SAMPLE_MODULE, SAMPLE_MODULE.replace("return a+b", "return a-b"))


def test_a_refused_change_is_learned_and_given_to_the_next_evolution(tdev, git_repo):
    (git_repo / TARGET / "tests").mkdir()
    (git_repo / TARGET / "tests" / "test_sample.py").write_text(TESTS)
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-m", "tests")
    runner = tdev.base / "run_tests.py"
    runner.write_text(TEST_RUNNER)
    env = {"EVOLUTION_TEST_COMMAND": f"{sys.executable} {runner}"}
    replies = {**MINIMAL, "implement": {"patch": BREAKS_ADD}}
    tdev.use_agents({phase: reply_agent(tdev.base, phase, replies[phase]) for phase in PHASES})

    refused = evolve(tdev, git_repo, "--focus", "docs", "--dry-run", env=env)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    store = SQLiteStore.open(path=tdev.history / "state.db")
    [record] = store.list_evolutions()
    assert record["status"] == "failed" and TEST_ID in record["error"]

    mined = tdev.run("update_patterns.py", "--source", f"{tdev.history}/", "--json")
    assert mined.returncode == 0, mined.stderr
    [pattern] = [p for p in json.loads(mined.stdout)["new"] if p["kind"] == "failure"]
    signature = pattern["signature"]
    assert (signature["phase"], signature["error_class"], signature["files"]) == ("implement", "tests failed",
                                                                                  [SAMPLE])
    assert signature["tests"] == [TEST_ID]
    assert signature["hunks"] == refusals.hunks(BREAKS_ADD) == [{"path": SAMPLE, "start": 2, "end": 8}]

    kept = tdev.base / "implement_input.json"
    tdev.use_agents({phase: reply_agent(tdev.base, phase, MINIMAL[phase],
                                        keep_input=kept if phase == "implement" else None) for phase in PHASES})
    again = evolve(tdev, git_repo, "--focus", "docs", "--dry-run", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    given = {p["id"]: p for p in json.loads(kept.read_text())["patterns"]}
    assert given[pattern["id"]]["signature"]["tests"] == [TEST_ID]
    assert given[pattern["id"]]["signature"]["hunks"] == signature["hunks"]


def test_update_patterns_mines_the_attempts_of_a_seeded_history(tdev):
    """Attempt records as the attempts runner writes them: feedback in the later attempt's input, the
    last refusal in the evolution's error."""
    store = SQLiteStore.open(create=True, path=tdev.history / "state.db")
    gates = "gates-failed: docstring 40.0->20.0 (must be >= 80.0 or no worse)"
    store.create_evolution({"id": "evo-a", "target": f"/repo/{TARGET}", "focus": "docs", "cycles": 1,
                            "status": "failed", "started_at": "2024-01-01T00:00:00+00:00",
                            "error": f"2 attempts refused; last: {gates}"})
    feedback = [{"attempt": 1, "error": f"tests-weakened: removes {TEST_ID}", "patch": BREAKS_ADD,
                 "tests": {"exit_code": 0, "failed": [], "output_tail": ""}, "gates": []}]
    for attempt, artifact in ((1, {"input": {"attempt": 1, "feedback": []}, "output": {"patch": BREAKS_ADD}}),
                              (2, {"input": {"attempt": 2, "feedback": feedback}, "output": {"patch": BREAKS_ADD}})):
        task_id = f"task-a-{attempt}"
        store.create_task({"id": task_id, "evolution_id": "evo-a", "cycle": 1, "phase": "implement", "agent": "x",
                           "status": "succeeded", "started_at": f"2024-01-01T00:00:0{attempt}+00:00"})
        path = tdev.history / "evo-a" / "tasks" / f"{task_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(artifact))

    result = tdev.run("update_patterns.py", "--source", f"{tdev.history}/", "--verbose")
    assert result.returncode == 0, result.stderr
    assert "added 2 pattern(s)" in result.stderr
    assert f"implement: tests-weakened ({TEST_ID})" in result.stdout
    assert "implement: gates-failed (docstring 40.0->20.0)" in result.stdout
    learned = {p["signature"]["error_class"]: p["signature"] for p in store.list_patterns("failure")}
    assert learned["gates-failed"]["gates"] == [{"name": "docstring", "before": 40.0, "after": 20.0}]
    assert learned["gates-failed"]["hunks"] == learned["tests-weakened"]["hunks"] == refusals.hunks(BREAKS_ADD)
