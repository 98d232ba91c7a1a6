"""Learned patterns end to end: add_prevention_pattern.py from PRs (GitHub stand-in) and
update_patterns.py mining the history."""

from __future__ import annotations

import json

import pytest

from lib.store import new_id
from lib.store.sqlite import SQLiteStore

AUTO_BODY = ("Automatic **quality** evolution `evo-1` of `packages/agents`.\n\n"
             "Change kind: `ruff-fix:E,F,W,I,UP,B+format`. Opened by T-Developer; review before merging.")


def seed_reverted_pull(github) -> None:
    """#10 an auto-evolution PR that broke things, #12 its revert made with `gh pr revert`."""
    github.add_pull(number=10, title="tdev: quality improvements in packages/agents (cycle 1)", body=AUTO_BODY,
                    labels=["auto-evolution"], state="closed", merged_at="2024-01-10T00:00:00Z",
                    head={"ref": "tdev/auto/20240110-quality-abc123", "sha": "a" * 40})
    github.files[10] = [{"filename": "packages/agents/sample.py", "status": "modified"},
                        {"filename": "packages/agents/tests/test_sample.py", "status": "modified"}]
    github.add_pull(number=12, title='Revert "tdev: quality improvements in packages/agents (cycle 1)"',
                    body="Reverts acme/widgets#10", labels=[])
    github.files[12] = [{"filename": "packages/agents/sample.py", "status": "modified"}]


# ---- add_prevention_pattern.py -------------------------------------------------------------

def test_prevention_pattern_from_a_revert_pr(tdev, github):
    seed_reverted_pull(github)
    result = tdev.run("add_prevention_pattern.py", "--from-pr", "12")
    assert result.returncode == 0, result.stderr
    assert "stored prevention pattern prevent-pr-10 from PR #12" in result.stderr
    assert "packages/agents/sample.py" in result.stdout
    store = SQLiteStore.open(path=tdev.history / "state.db")
    [pattern] = store.list_patterns("prevention")
    signature = pattern["signature"]
    assert (pattern["id"], pattern["source"], pattern["hits"]) == ("prevent-pr-10", "12", 0)
    assert signature["files"] == ["packages/agents/sample.py", "packages/agents/tests/test_sample.py"]
    assert signature["change_kind"] == "ruff-fix:E,F,W,I,UP,B+format"
    assert (signature["pr"], signature["reverted_by"], signature["labels"]) == (10, 12, ["auto-evolution"])
    assert signature["file_kinds"] == ["python", "tests"] and "reverted by #12" in signature["message"]

    again = tdev.run("add_prevention_pattern.py", "--from-pr", "12", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["created"] is False
    assert len(store.list_patterns()) == 1
    audit = [json.loads(line) for line in (tdev.history / "audit.log").read_text().splitlines()]
    assert [(entry["pattern"], entry["created"]) for entry in audit] == [("prevent-pr-10", True),
                                                                         ("prevent-pr-10", False)]


def test_prevention_pattern_from_a_git_revert_commit(tdev, github):
    seed_reverted_pull(github)
    github.add_pull(number=13, title='Revert "tdev: quality"', body="This reverts commit 0a1b2c3d4e5f.\n")

    @github.route("GET", r"/repos/acme/widgets/commits/(?P<sha>[0-9a-f]+)/pulls")
    def commit_pulls(standin, match, query, body):
        return 200, [{"number": 10}] if match["sha"] == "0a1b2c3d4e5f" else []

    result = tdev.run("add_prevention_pattern.py", "--from-pr", "13", "--json")
    assert result.returncode == 0, result.stderr
    pattern = json.loads(result.stdout)
    assert pattern["id"] == "prevent-pr-10" and pattern["signature"]["reverted_by"] == 13


def test_prevention_pattern_from_a_plain_pr_blocks_every_change_kind(tdev, github):
    github.add_pull(number=5, title="refactor: split the planner", body="Hand-made.")
    github.files[5] = [{"filename": "packages/agents/planner.py", "status": "modified"}]
    result = tdev.run("add_prevention_pattern.py", "--from-pr", "5", "--dry-run", "--json")
    assert result.returncode == 0
    pattern = json.loads(result.stdout)
    assert pattern["signature"]["change_kind"] == "any" and pattern["signature"]["reverted_by"] is None
    assert not (tdev.history / "state.db").exists()  # a dry run stores nothing


@pytest.mark.parametrize("args, code, message", [
    (["--from-pr", "99"], 1, "not found"),
    (["--from-pr", "0"], 2, "--from-pr"),
    (["--from-pr", "abc"], 2, "--from-pr"),
])
def test_prevention_pattern_errors(tdev, github, args, code, message):
    result = tdev.run("add_prevention_pattern.py", *args)
    assert result.returncode == code and message in result.stderr and "Traceback" not in result.stderr


def test_prevention_pattern_without_github(tdev):
    result = tdev.run("add_prevention_pattern.py", "--from-pr", "3")
    assert result.returncode == 1 and "GitHub is not configured" in result.stderr


# ---- mining: update_patterns.py ------------------------------------------------------------

def add_evolution(store, history, status: str, failures: list[tuple[str, str, list[str]]], focus="quality"):
    evolution_id = new_id("evo")
    day = len(store.list_evolutions()) + 1
    store.create_evolution({"id": evolution_id, "target": "packages/agents", "focus": focus, "cycles": 1,
                            "status": status, "started_at": f"2024-01-{day:02d}T00:00:00+00:00"})
    tasks = [("plan", "succeeded", None, {"change_kind": "ruff-fix:E+format", "files": ["a.py"]}, [])]
    tasks += [(phase, "failed", error, None, files) for phase, error, files in failures]
    for index, (phase, task_status, error, output, files) in enumerate(tasks):
        task_id = f"task-{evolution_id[4:]}-{index}"
        store.create_task({"id": task_id, "evolution_id": evolution_id, "cycle": 1, "phase": phase,
                           "agent": f"{phase}-agent", "status": task_status, "error": error,
                           "started_at": f"2024-01-01T00:00:0{index}+00:00"})
        artifact = history / evolution_id / "tasks" / f"{task_id}.json"
        artifact.parent.mkdir(parents=True, exist_ok=True)
        artifact.write_text(json.dumps({"input": {"context": {"plan": {"files": files}}}, "output": output,
                                        "error": error}))
    return evolution_id


def test_update_patterns_mines_merges_and_reports(tdev):
    history = tdev.base / "evolution_history"  # the runbook's relative --source, from the project folder
    env = {"TDEV_HISTORY_DIR": str(history)}
    store = SQLiteStore.open(create=True, path=history / "state.db")
    timeout = ("implement", "timeout: implement-agent did not finish within 5s", ["b.py", "a.py"])
    add_evolution(store, history, "failed", [timeout])
    add_evolution(store, history, "failed", [timeout])
    add_evolution(store, history, "succeeded", [])
    add_evolution(store, history, "unchanged", [])  # same plan, but it changed nothing: no success to learn from

    first = tdev.run("update_patterns.py", "--source", "evolution_history/", "--json", env=env, cwd=tdev.base)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["updated"] == [] and len(report["new"]) == 2
    failure = next(p for p in report["new"] if p["kind"] == "failure")
    assert failure["hits"] == 2
    assert failure["signature"]["phase"] == "implement" and failure["signature"]["error_class"] == "timeout"
    assert failure["signature"]["files"] == ["a.py", "b.py"]
    success = next(p for p in report["new"] if p["kind"] == "success")
    assert success["signature"]["change_kind"] == "ruff-fix:E+format" and success["hits"] == 1

    second = tdev.run("update_patterns.py", "--source", "evolution_history/", "--verbose", env=env, cwd=tdev.base)
    assert second.returncode == 0 and "no new or updated patterns" in second.stderr
    assert "added 0 pattern(s), updated 0, 2 unchanged" in second.stderr

    add_evolution(store, history, "failed", [timeout, ("evaluate", "gates-failed: cycle 1: docstring", [])])
    third = tdev.run("update_patterns.py", "--source", "evolution_history/", "--verbose", env=env, cwd=tdev.base)
    assert third.returncode == 0, third.stderr
    assert "added 1 pattern(s), updated 1, 1 unchanged" in third.stderr
    assert "2 -> 3" in third.stdout and "implement: timeout [a.py, b.py]" in third.stdout
    assert "evaluate: gates-failed" in third.stdout
    assert sorted(p["hits"] for p in store.list_patterns("failure")) == [1, 3]
    assert len((history / "audit.log").read_text().splitlines()) == 3


def test_update_patterns_from_another_history_folder_and_errors(tdev):
    copy = tdev.base / "restored"
    store = SQLiteStore.open(create=True, path=copy / "state.db")
    add_evolution(store, copy, "failed", [("plan", "agent-error: plan-agent: ValueError: bad", [])])
    dry = tdev.run("update_patterns.py", "--source", str(copy), "--dry-run", "--json")
    assert dry.returncode == 0 and len(json.loads(dry.stdout)["new"]) == 1
    assert not SQLiteStore.open(create=True, path=tdev.history / "state.db").list_patterns()
    result = tdev.run("update_patterns.py", "--source", str(copy), "--verbose")
    assert result.returncode == 0 and "plan: agent-error/ValueError" in result.stdout
    assert len(SQLiteStore.open(path=tdev.history / "state.db").list_patterns("failure")) == 1

    missing = tdev.run("update_patterns.py", "--source", str(tdev.base / "nowhere"))
    assert missing.returncode == 1 and "no evolution history at" in missing.stderr


def test_update_patterns_takes_the_cron_lock(tdev):
    from lib import cli

    with cli.lock("update_patterns"):
        result = tdev.run("update_patterns.py", "--source", str(tdev.history))
    assert result.returncode == 1 and "update_patterns is already running" in result.stderr
