"""End to end: evolution candidates (DESIGN §5 Candidates) through run_evolution.py --monitor.

With evolution.candidates N the implement phase asks N changes at once, each in a worktree of its own; the
runner judges each as it judges a single attempt and keeps the passing one with the best gain. Real git with a
bare origin, the GitHub stand-in, command agents that keep the inputs they were given.
"""

from __future__ import annotations

import json
import sys

import pytest
from evolution_agents import (
    BROKEN,
    DOCSTRINGS,
    DOCUMENTED,
    SAMPLE,
    TARGET,
    TEST_FILE,
    TEST_ID,
    TESTS,
    assert_nothing_published,
    auto_branches,
    candidate_agent,
    commit_file,
    diff,
    evolve,
    kept_candidate_inputs,
    origin_of,
    the_evolution,
    use_implement_agents,
)
from evolution_runs import wait_for
from openai_standin import phase_replies

from lib import procs
from lib.store import open_store
from tests.conftest import PHASE_AGENTS, SAMPLE_MODULE, git

#: Documents the module only: passes (the docstring gate holds by no regression) with a smaller gain.
MODULE_ONLY = diff(SAMPLE, SAMPLE_MODULE, '"""Small helpers."""\n' + SAMPLE_MODULE)


def attempts_file(tdev, record: dict) -> list[dict]:
    return json.loads((tdev.history / record["id"] / "attempts.json").read_text())


def implement_tasks(tasks: list[dict]) -> list[dict]:
    return [task for task in tasks if task["phase"] == "implement"]


def candidate_worktrees(tdev, record: dict) -> list:
    return sorted((tdev.history / "worktrees").glob(f"{record['id']}-c*"))


def test_two_agents_one_breaks_the_tests_the_passing_one_is_published(tdev, git_repo, github):
    base = commit_file(git_repo, TEST_FILE, TESTS)
    git(git_repo, "push", "-q", "origin", "main")
    kept = tdev.base / "kept"
    use_implement_agents(tdev, {
        "implement-a": candidate_agent(tdev.base, "implement-a", {"*": {"patch": BROKEN}}, kept, together=2),
        "implement-b": candidate_agent(tdev.base, "implement-b", {"*": {"patch": DOCSTRINGS, "summary": "docs"}},
                                       kept, together=2)}, candidates=2)
    result = evolve(tdev, git_repo, "--focus", "docs")
    assert result.returncode == 0, result.stdout + result.stderr
    record, tasks = the_evolution()
    assert (record["status"], record["attempts"], record["tests"]) == ("succeeded", 1, "passed")
    # both candidates ran at once: each saw the other start before it answered
    assert sorted(p.name for p in kept.glob("started-*")) == ["started-1-1-c1", "started-1-1-c2"]
    assert list(kept.glob("alone-*")) == []
    implement = implement_tasks(tasks)
    assert [(t["agent"], t["attempt"], t["status"]) for t in implement] == [
        ("implement-a", 1, "succeeded"), ("implement-b", 1, "succeeded")]
    assert implement[0]["output_summary"].startswith("candidate 1/2: refused: ")
    assert implement[1]["output_summary"].startswith("candidate 2/2: passed: ")
    assert [t["phase"] for t in tasks][-1] == "evaluate"  # asked about the winner only
    assert record["cost_usd"] == 0.02  # both candidates' costs count
    [attempt] = attempts_file(tdev, record)
    assert (attempt["outcome"], attempt["chosen"]) == ("succeeded", 2)
    assert attempt["why"] == "the only one of 2 candidates that passed"
    first, second = attempt["candidates"]
    assert (first["agent"], first["outcome"], second["agent"], second["outcome"]) == (
        "implement-a", "refused", "implement-b", "passed")
    assert first["error"].startswith(f"tests failed: {TEST_ID}") and first["task_id"] == implement[0]["id"]
    # the winner's change, alone, on the pushed branch; no candidate worktree is left
    [branch] = auto_branches(origin_of(git_repo))
    assert git(origin_of(git_repo), "rev-parse", f"{branch}~1") == base
    assert git(origin_of(git_repo), "show", f"{branch}:{SAMPLE}") + "\n" == DOCUMENTED
    assert candidate_worktrees(tdev, record) == []
    body = github.pulls[record["pr_number"]]["body"]
    assert "- attempt 1: passed (candidate 2 of 2: the only one of 2 candidates that passed)" in body


def test_one_agent_asked_three_times_the_better_gain_wins(tdev, git_repo, github):
    kept = tdev.base / "kept"
    agent = candidate_agent(tdev.base, "implement", {"1": {"patch": MODULE_ONLY}, "2": {"patch": DOCSTRINGS},
                                                     "3": {"patch": "not a diff\n"}}, kept)
    use_implement_agents(tdev, {"refactor-agent": agent}, candidates=3)
    result = evolve(tdev, git_repo, "--focus", "docs")
    assert result.returncode == 0, result.stdout + result.stderr
    record, tasks = the_evolution()
    assert record["status"] == "succeeded" and record["attempts"] == 1
    inputs = kept_candidate_inputs(kept)
    assert sorted(inputs) == [(1, 1, 1), (1, 1, 2), (1, 1, 3)]
    worktrees = {given["worktree"] for given in inputs.values()}
    assert worktrees == {str(tdev.history / "worktrees" / f"{record['id']}-c{k}") for k in (1, 2, 3)}
    assert {(given["candidate"], given["candidates"]) for given in inputs.values()} == {(1, 3), (2, 3), (3, 3)}
    assert len({given["task_id"] for given in inputs.values()}) == 3
    [attempt] = attempts_file(tdev, record)
    assert attempt["chosen"] == 2 and attempt["why"].startswith("the best gain for focus docs (2 of 3 passed: ")
    gains = {c["candidate"]: c["gain"] for c in attempt["candidates"]}
    assert gains[2] > gains[1] > 0 and gains[3] is None
    assert attempt["candidates"][2]["outcome"] == "refused"
    assert "bad-patch: not a patch git can read" in attempt["candidates"][2]["error"]
    assert attempt["candidates"][1]["metrics"]["docstring"] == f"{record['metrics_before']['docstring']}->100.0"
    [branch] = auto_branches(origin_of(git_repo))
    assert git(origin_of(git_repo), "show", f"{branch}:{SAMPLE}") + "\n" == DOCUMENTED
    assert [t["status"] for t in implement_tasks(tasks)] == ["succeeded", "succeeded", "failed"]
    assert candidate_worktrees(tdev, record) == []
    report = tdev.run("analyze_failure.py", "--id", record["id"])
    assert report.returncode == 0, report.stderr
    assert "    candidate 1 (refactor-agent): passed: gain +1.0000" in report.stdout
    assert "    chosen: candidate 2, the best gain for focus docs" in report.stdout
    shown = tdev.run("show_evolution_history.py", "--since", "1h")
    assert shown.returncode == 0, shown.stderr
    [row] = [line for line in shown.stdout.splitlines() if line.startswith(record["id"])]
    assert "1 (3 candidates)" in row


def test_no_candidate_passes_the_next_attempt_hears_every_refusal(tdev, git_repo, github):
    base = commit_file(git_repo, TEST_FILE, TESTS)
    kept = tdev.base / "kept"
    agent = candidate_agent(tdev.base, "implement", {"1": {"patch": BROKEN}, "2": {"patch": "not a diff\n"}}, kept)
    use_implement_agents(tdev, {"refactor-agent": agent}, candidates=2)
    result = evolve(tdev, git_repo, "--focus", "docs", "--attempts", "2")
    assert result.returncode == 1
    record, tasks = the_evolution()
    assert record["status"] == "failed" and record["attempts"] == 2
    assert record["error"].startswith("2 attempts refused; last: no candidate passed: candidate 1 (refactor-agent): "
                                      f"tests failed: {TEST_ID}"), record["error"]
    assert "; candidate 2 (refactor-agent): implement failed (task " in record["error"]
    assert "bad-patch: not a patch git can read" in record["error"]
    assert [(t["attempt"], t["status"]) for t in implement_tasks(tasks)] == [
        (1, "succeeded"), (1, "failed"), (2, "succeeded"), (2, "failed")]
    assert "evaluate" not in [t["phase"] for t in tasks]
    inputs = kept_candidate_inputs(kept)
    assert inputs[1, 1, 1]["feedback"] == [] and inputs[1, 1, 2]["feedback"] == []
    for candidate in (1, 2):  # both candidates of attempt 2 hear both refusals of attempt 1
        heard = inputs[1, 2, candidate]["feedback"]
        assert [(e["attempt"], e["candidate"]) for e in heard] == [(1, 1), (1, 2)]
        assert heard[0]["error"].startswith(f"tests failed: {TEST_ID}") and heard[0]["tests"]["failed"] == [TEST_ID]
        assert "\n+    return a-b\n" in heard[0]["patch"]
        assert "bad-patch: not a patch git can read" in heard[1]["error"] and heard[1]["patch"] == "not a diff\n"
    assert [(a["attempt"], a["outcome"], a["chosen"]) for a in attempts_file(tdev, record)] == [
        (1, "refused", None), (2, "refused", None)]
    assert_nothing_published(git_repo, base)
    assert candidate_worktrees(tdev, record) == []
    report = tdev.run("analyze_failure.py", "--id", record["id"])
    assert "  cycle 1 attempt 2: refused\n    candidate 1 (refactor-agent): refused: tests failed: " in report.stdout
    assert "    candidate 2 (refactor-agent): refused: implement failed (task " in report.stdout
    # learning: every refused candidate of every attempt is mined once (the last attempt's from attempts.json)
    mined = tdev.run("update_patterns.py", "--source", f"{tdev.history}/", "--json")
    assert mined.returncode == 0, mined.stderr
    hits: dict = {}
    for pattern in json.loads(mined.stdout)["new"]:
        if pattern["kind"] == "failure":
            kind = pattern["signature"]["error_class"]
            hits[kind] = hits.get(kind, 0) + pattern["hits"]
    assert hits == {"tests failed": 2, "bad-patch": 2}


def test_every_candidate_changing_nothing_ends_unchanged(tdev, git_repo):
    agent = candidate_agent(tdev.base, "implement", {"*": {"patch": "", "summary": "nothing to do"}}, tdev.base / "k")
    use_implement_agents(tdev, {"refactor-agent": agent}, candidates=2)
    result = evolve(tdev, git_repo, "--focus", "docs")
    assert result.returncode == 0, result.stdout + result.stderr
    record, tasks = the_evolution()
    assert record["status"] == "unchanged" and len(implement_tasks(tasks)) == 2
    [attempt] = attempts_file(tdev, record)
    assert [c["outcome"] for c in attempt["candidates"]] == ["unchanged", "unchanged"]


def test_a_force_stop_ends_every_candidate_agent_and_cleanup_removes_their_worktrees(tdev, git_repo, runners):
    kept = tdev.base / "kept"
    script = tdev.base / "hang.py"
    script.write_text("import json, os, pathlib, sys, time\ngiven = json.load(sys.stdin)\n"
                      f"pathlib.Path({str(kept)!r}, f\"pid-{{given['candidate']}}\").write_text(str(os.getpid()))\n"
                      "time.sleep(300)\n")
    kept.mkdir()
    use_implement_agents(tdev, {"refactor-agent": [sys.executable, str(script)]}, candidates=2)
    started = tdev.run("run_evolution.py", "--target", str(git_repo / TARGET), "--focus", "docs")
    assert started.returncode == 0, started.stderr
    evolution_id = started.stdout.split()[0]
    runners.append(evolution_id)
    pids = wait_for(lambda: [int(p.read_text()) for p in sorted(kept.glob("pid-*")) if p.read_text()] if len(
        list(kept.glob("pid-*"))) == 2 else None, 60)  # both agents alive at once
    record = open_store().get_evolution(evolution_id)
    assert len(candidate_worktrees(tdev, record)) == 2
    gc = tdev.run("gc.py")  # the worktrees of a running evolution's candidates are not orphans
    assert gc.returncode == 0, gc.stderr
    assert len(candidate_worktrees(tdev, record)) == 2
    stop = tdev.run("stop_evolution.py", "--id", evolution_id, "--force")
    assert stop.returncode == 0, stop.stderr
    wait_for(lambda: not any(procs.alive(pid) for pid in pids), 30)
    cleanup = tdev.run("cleanup.py", "--evolution", evolution_id)
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert candidate_worktrees(tdev, record) == []
    assert not (tdev.history / "worktrees" / evolution_id).exists()


@pytest.mark.parametrize("count, fits", [(2, True), (3, False)])
def test_the_budget_is_reserved_for_every_candidate_before_any_is_asked(tdev, git_repo, openai_server, count, fits):
    """A model implement agent whose worst case is about $1 a call (100,000 output tokens at $0.01/1k) and a
    budget of $2.50: two candidates fit and both count; three do not, and no call is made."""
    openai_server.default = phase_replies({"implement": {"patch": DOCSTRINGS}})
    model = {"runtime": "openai", "base_url": openai_server.base_url, "model": "coder", "max_tokens": 100000,
             "price_per_1k_input_usd": 0.002, "price_per_1k_output_usd": 0.01}
    tdev.write_config("settings", f"evolution:\n  candidates: {count}\n")
    lines = ["agents:"] + [f"  - {json.dumps({'name': name, 'phase': phase, 'runtime': 'local'})}"
                           for phase, name in PHASE_AGENTS.items() if phase != "implement"]
    lines.append(f"  - {json.dumps({'name': 'coder', 'phase': 'implement', **model})}")
    tdev.write_config("agents", "\n".join(lines) + "\n")
    result = evolve(tdev, git_repo, "--focus", "docs", "--budget-usd", "2.5")
    record, tasks = the_evolution()
    implement = implement_tasks(tasks)
    assert len(implement) == count
    if fits:
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(openai_server.requests) == 2 and record["status"] == "succeeded"
        assert record["cost_usd"] == pytest.approx(sum(t["cost_usd"] for t in implement)) and record["cost_usd"] > 0
        return
    assert result.returncode == 1
    assert record["error"].startswith("cost-limit: 3 candidates could cost up to $"), record["error"]
    assert record["error"].endswith("of the budget $2.50 is left; no call was made")
    assert openai_server.requests == [] and record["cost_usd"] == 0
    assert [(t["status"], t["error"]) for t in implement] == [("failed", record["error"])] * 3


def test_a_candidate_that_changes_the_operators_checkout_ends_the_evolution_as_escaped(tdev, git_repo, github):
    """Candidates run at once: a change to the checkout cannot be told apart, so every candidate on this machine
    is named, and nothing is committed even though one candidate passed."""
    base = git(git_repo, "rev-parse", "HEAD")
    kept = tdev.base / "kept"
    honest = candidate_agent(tdev.base, "implement-a", {"*": {"patch": DOCSTRINGS}}, kept)
    sneaky = candidate_agent(tdev.base, "implement-b", {"*": {"patch": DOCSTRINGS}}, kept)
    script = tdev.base / "agent_implement-b.py"
    script.write_text(f"open({str(git_repo / SAMPLE)!r}, 'a').write('# written by a candidate\\n')\n"
                      + script.read_text())
    use_implement_agents(tdev, {"implement-a": honest, "implement-b": sneaky}, candidates=2)
    result = evolve(tdev, git_repo, "--focus", "docs")
    assert result.returncode == 1
    record, tasks = the_evolution()
    escape = f"escaped: implement-a or implement-b changed {SAMPLE} outside its worktree"
    assert record["status"] == "failed" and record["error"] == escape
    assert [(t["status"], t["error"]) for t in implement_tasks(tasks)] == [("failed", escape)] * 2
    assert [a["outcome"] for a in attempts_file(tdev, record)] == ["failed"]
    assert auto_branches(git_repo) == [] and auto_branches(origin_of(git_repo)) == []
    assert git(git_repo, "rev-parse", "HEAD") == base and record["pr_number"] is None


@pytest.mark.parametrize("other, status", [({"patch": DOCSTRINGS}, "succeeded"), ({"patch": "not a diff\n"}, "failed")])
def test_a_candidate_past_its_timeout_is_ended_and_only_ends_the_evolution_when_none_passed(tdev, git_repo, github,
                                                                                             other, status):
    """The agent limits hold per candidate: the hanging one's tree is ended at its timeout. A failure that would
    end a single attempt is only a failed candidate while another passes; with none passing it ends the evolution."""
    kept = tdev.base / "kept"
    hanging = candidate_agent(tdev.base, "implement-a", {"*": {"patch": DOCSTRINGS}}, kept)
    script = tdev.base / "agent_implement-a.py"
    script.write_text(f"import os, time\nopen({str(tdev.base / 'hung.pid')!r}, 'w').write(str(os.getpid()))\n"
                      "time.sleep(300)\n" + script.read_text())
    use_implement_agents(tdev, {"implement-a": hanging,
                                "implement-b": candidate_agent(tdev.base, "implement-b", {"*": other}, kept)},
                         candidates=2)
    registry = tdev.config_dir / "agents.yaml"
    registry.write_text(registry.read_text().replace('"name": "implement-a",', '"name": "implement-a", '
                                                                               '"timeout_seconds": 2,'))
    result = evolve(tdev, git_repo, "--focus", "docs", "--attempts", "1")
    record, tasks = the_evolution()
    hung, answered = implement_tasks(tasks)
    assert hung["status"] == "failed" and hung["error"].startswith("timeout: ") and "within 2s" in hung["error"]
    assert not procs.alive(int((tdev.base / "hung.pid").read_text()))
    assert record["status"] == status, record["error"]
    if status == "succeeded":
        assert result.returncode == 0 and answered["status"] == "succeeded"
        assert attempts_file(tdev, record)[0]["chosen"] == 2
    else:
        assert result.returncode == 1 and answered["error"].startswith("bad-patch: ")
        assert record["error"] == f"implement failed (task {hung['id']}): {hung['error']}"
        assert [a["outcome"] for a in attempts_file(tdev, record)] == ["failed"]
