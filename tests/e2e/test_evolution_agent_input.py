"""End to end: what every agent is given (DESIGN §5, Agent input). Command agents keep the document
they read on stdin; the test compares it with the store, the repository and the configuration.
"""

from __future__ import annotations

import json
import re

from evolution_agents import (
    MINIMAL,
    PHASES,
    SAMPLE,
    TARGET,
    add_prevention_pattern,
    evolve,
    reply_agent,
)

from lib import config
from lib.store import open_store
from tests.conftest import SAMPLE_MODULE, git

KEYS = {"evolution_id", "task_id", "cycle", "phase", "target", "worktree", "focus", "dry_run", "repo", "files",
        "map", "patterns", "gates", "metrics", "context", "traceparent", "attempt", "feedback", "history", "tests"}
SECRET = "s3cr3t-t0ken"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")


def mine_a_failure_pattern(tdev, git_repo) -> dict:
    """An evolution whose planner breaks the contract, then update_patterns.py over the history."""
    tdev.use_agents({"plan": reply_agent(tdev.base, "plan", {"files": SAMPLE})})
    assert evolve(tdev, git_repo).returncode == 1
    mined = tdev.run("update_patterns.py", "--source", f"{tdev.history}/", "--json")
    assert mined.returncode == 0, mined.stderr
    [pattern] = [p for p in json.loads(mined.stdout)["new"] if p["kind"] == "failure"]
    assert pattern["signature"]["phase"] == "plan" and pattern["signature"]["error_class"] == "bad-output"
    return pattern


def test_every_agent_gets_the_section_5_input(tdev, git_repo):
    failure = mine_a_failure_pattern(tdev, git_repo)
    add_prevention_pattern("prevent-pr-7", [f"{TARGET}/legacy.py"])
    git(git_repo, "remote", "set-url", "origin", f"https://deploy:{SECRET}@git.example.com/acme/widgets.git")
    tdev.write_config("settings", "evolution:\n  agent_context_bytes: 100\n")
    kept = {phase: tdev.base / f"input_{phase}.json" for phase in PHASES}
    tdev.use_agents({phase: reply_agent(tdev.base, phase, MINIMAL[phase], keep_input=kept[phase]) for phase in PHASES})
    base = git(git_repo, "rev-parse", "HEAD")

    result = evolve(tdev, git_repo, "--focus", "docs", "--dry-run")  # dry: the made-up origin is never asked
    assert result.returncode == 0, result.stdout + result.stderr
    store = open_store()
    record = store.list_evolutions()[0]
    assert record["status"] == "succeeded"
    tasks = store.list_tasks(record["id"])
    texts = {phase: path.read_text() for phase, path in kept.items()}
    inputs = {phase: json.loads(text) for phase, text in texts.items()}

    spans = {s["name"]: s for s in store.list_spans(tasks[0]["trace_id"])}
    for task, phase in zip(tasks, PHASES, strict=True):
        given = inputs[phase]
        assert set(given) == KEYS
        assert (given["evolution_id"], given["task_id"], given["cycle"], given["phase"]) == (
            record["id"], task["id"], 1, phase)
        assert (given["target"], given["focus"], given["dry_run"]) == (TARGET, "docs", True)
        assert given["worktree"] == str(tdev.history / "worktrees" / record["id"])
        assert given["repo"]["remote_url"] == "https://git.example.com/acme/widgets.git"
        assert given["repo"]["base_sha"] == base
        assert re.fullmatch(rf"tdev/auto/\d{{8}}-docs-{record['id'][-6:]}", given["repo"]["branch"])
        assert SECRET not in texts[phase]
        assert given["gates"] == config.gates() and given["metrics"] == record["metrics_before"]
        assert {p["id"] for p in given["patterns"]} == {"prevent-pr-7", failure["id"]}
        trace_id, span_id = TRACEPARENT.match(given["traceparent"]).groups()
        assert trace_id == task["trace_id"] and spans[f"{phase} {task['agent']}"]["span_id"] == span_id
        # the first attempt of the first cycle, on a target without tests
        assert (given["attempt"], given["feedback"], given["history"], given["tests"]) == (1, [], [], None)
        assert task["attempt"] == 1

    # files: the target's for research and plan, the plan's for implement, the change's for evaluate;
    # 100 bytes of content in all; every other target file is in the map, by its path at least
    init = {"path": f"{TARGET}/__init__.py", "content": '"""Agents."""\n'}
    assert inputs["research"]["files"] == inputs["plan"]["files"] == [init]
    assert [entry["path"] for entry in inputs["research"]["map"]] == [SAMPLE]
    assert inputs["implement"]["files"] == inputs["evaluate"]["files"] == []
    assert [entry["path"] for entry in inputs["implement"]["map"]] == [SAMPLE, init["path"]]
    assert inputs["implement"]["map"][0]["lines"] == SAMPLE_MODULE.count("\n")

    # context: this cycle's earlier outputs, and for the evaluator the runner's own judgement
    assert inputs["research"]["context"] == {}
    assert inputs["plan"]["context"] == {"research": MINIMAL["research"]}
    assert inputs["implement"]["context"] == {"research": MINIMAL["research"], "plan": MINIMAL["plan"]}
    judged = inputs["evaluate"]["context"].pop("runner")
    assert inputs["evaluate"]["context"] == {phase: MINIMAL[phase] for phase in PHASES[:3]}
    assert judged["files_changed"] == [SAMPLE] and judged["metrics_after"] == record["metrics_after"]
    assert judged["tests"]["status"] == "not run" and all(g["passed"] is not False for g in judged["gates"])

    artifacts = "".join(p.read_text() for p in (tdev.history / record["id"] / "tasks").iterdir())
    assert SECRET not in artifacts and SECRET not in (tdev.history / "current.log").read_text()


def test_a_package_larger_than_the_budget_is_shown_whole_through_files_and_map(tdev, git_repo):
    """Every target file is in `files` or in the `map`, and the contents stay within the budget."""
    package = git_repo / TARGET
    for index in range(40):
        (package / f"module_{index:02}.py").write_text(
            f'"""Module {index}."""\n' + "".join(
                f'\n\ndef work_{part}(value, *, scale=2):\n    """Scaled."""\n    return value * scale\n'
                for part in range(8)))
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-m", "a larger package")
    budget = 6000
    tdev.write_config("settings", f"evolution:\n  agent_context_bytes: {budget}\n")
    kept = {phase: tdev.base / f"input_{phase}.json" for phase in PHASES}
    tdev.use_agents({phase: reply_agent(tdev.base, phase, MINIMAL[phase], keep_input=kept[phase]) for phase in PHASES})

    result = evolve(tdev, git_repo, "--focus", "docs", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    every = sorted(p.relative_to(git_repo).as_posix() for p in package.glob("*.py"))
    inputs = {phase: json.loads(path.read_text()) for phase, path in kept.items()}
    for phase, given in inputs.items():
        assert sorted([e["path"] for e in given["files"]] + [e["path"] for e in given["map"]]) == every, phase
        assert 0 < sum(len(e["content"].encode()) for e in given["files"]) <= budget
    # research ranks by the focus (sample.py lacks every docstring); implement starts with the plan's file
    assert inputs["research"]["files"][0]["path"] == inputs["implement"]["files"][0]["path"] == SAMPLE
    outline = next(e for e in inputs["implement"]["map"] if e["path"] == f"{TARGET}/module_00.py")
    assert outline["lines"] == 41 and outline["symbols"][0]["signature"].startswith("def work_0")
