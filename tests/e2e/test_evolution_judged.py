"""End to end: agents propose, the runner judges (DESIGN §5).

run_evolution.py --monitor runs as an operator runs it, on a real repository with a bare origin
and the GitHub stand-in; the agents are command agents answering fixed replies. A patch the
runner accepts is measured, committed, pushed and opened as a labelled PR; a security finding,
failing tests or the evaluator's veto fail the cycle and nothing leaves the machine; an empty
change ends `unchanged`, which is not a failure.
"""

from __future__ import annotations

import json
import shlex
import sys

import pytest
from evolution_agents import (
    DOCSTRINGS,
    DOCUMENTED,
    MINIMAL,
    PHASES,
    SAMPLE,
    assert_nothing_published,
    auto_branches,
    commit_file,
    diff,
    evolve,
    origin_of,
    reply_agent,
    the_evolution,
)

from lib import procs
from tests.conftest import SAMPLE_MODULE, git

#: Tests of the sample module, importable from the repository root (where the test command runs).
TESTS = '"""Tests of the sample module."""\nfrom packages.agents.sample import add\n\n\n' \
        'def test_add():\n    """Two and two."""\n    assert add(2, 2) == 4\n'


def agents(tdev, **outputs) -> None:
    """Register a command agent answering the given output for each phase named; local agents for the rest."""
    tdev.use_agents({phase: reply_agent(tdev.base, phase, output) for phase, output in outputs.items()})


# ---- a change the runner accepts --------------------------------------------------------------

@pytest.mark.parametrize("minimal", [False, True], ids=["command-implement", "every-phase-minimal-keys"])
def test_a_patch_is_applied_measured_committed_pushed_and_opened(tdev, git_repo, github, minimal):
    base = git(git_repo, "rev-parse", "HEAD")
    agents(tdev, **(MINIMAL if minimal else {"implement": {"patch": DOCSTRINGS}}))  # minimal: only §5's keys
    result = evolve(tdev, git_repo, "--focus", "docs")
    assert result.returncode == 0, result.stdout + result.stderr
    record, tasks = the_evolution()
    assert (record["status"], record["error"]) == ("succeeded", None)
    assert f"{record['id']} succeeded" in result.stdout
    assert [(t["phase"], t["status"], t["error"]) for t in tasks] == [(p, "succeeded", None) for p in PHASES]
    assert record["metrics_before"]["docstring"] == 20.0 and record["metrics_after"]["docstring"] == 100.0
    assert record["files_changed"] == 1 and record["tests"] == "not run"
    [branch] = auto_branches(git_repo)
    assert auto_branches(origin_of(git_repo)) == [branch] and branch.endswith(f"-docs-{record['id'][-6:]}")
    assert git(origin_of(git_repo), "show", f"{branch}:{SAMPLE}") + "\n" == DOCUMENTED
    assert git(origin_of(git_repo), "rev-parse", f"{branch}~1") == base
    assert "Metrics-Impact: docstring 20.0->100.0" in git(git_repo, "log", "-1", "--format=%B", branch)
    assert git(git_repo, "rev-parse", "HEAD") == base and git(git_repo, "status", "--porcelain") == ""
    assert (git_repo / SAMPLE).read_text() == SAMPLE_MODULE  # the operator's checkout is untouched
    pull = github.pulls[record["pr_number"]]
    assert record["pr_url"] == pull["html_url"] and pull["head"]["ref"] == branch
    assert "| Metric | Before | After |" in pull["body"]
    assert "| Docstring coverage | 20.0% | 100.0% |" in pull["body"]
    assert "Tests: **not run** (no test command for this target)." in pull["body"]
    assert [label["name"] for label in pull["labels"]] == ["auto-evolution"]


def test_the_target_tests_run_after_the_patch_and_the_pr_says_passed(tdev, git_repo, github):
    tdev.env.pop("PYTHONDONTWRITEBYTECODE", None)  # as on an operator's machine: the tests leave __pycache__
    commit_file(git_repo, "packages/agents/test_sample.py", TESTS)
    agents(tdev, implement={"patch": DOCSTRINGS})
    result = evolve(tdev, git_repo, "--focus", "docs")
    assert result.returncode == 0, result.stdout + result.stderr
    record, _ = the_evolution()
    assert record["status"] == "succeeded" and record["tests"] == "passed"
    [branch] = auto_branches(origin_of(git_repo))
    changed = git(origin_of(git_repo), "diff", "--name-only", f"{branch}~1", branch)
    assert changed == SAMPLE  # only the change: nothing the test run left behind (__pycache__) is committed
    body = github.pulls[record["pr_number"]]["body"]
    assert "Tests: **passed** (`" in body and "-m pytest -q -rA" in body and "packages/agents`: exit 0" in body


def test_what_the_evaluator_edits_after_the_judgement_is_not_committed(tdev, git_repo, github):
    edit = ("worktree = json.loads(payload)['worktree']\n"
            "open(os.path.join(worktree, 'packages/agents/sample.py'), 'a').write('UNJUDGED = eval(\"1\")\\n')\n"
            "open(os.path.join(worktree, 'packages/agents/extra.py'), 'w').write('X = 1\\n')")
    tdev.use_agents({"implement": reply_agent(tdev.base, "implement", {"patch": DOCSTRINGS}),
                     "evaluate": reply_agent(tdev.base, "evaluate", {"verdict": "pass"}, before=edit)})
    result = evolve(tdev, git_repo, "--focus", "docs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "only the judged change is committed" in result.stdout
    [branch] = auto_branches(origin_of(git_repo))
    assert git(origin_of(git_repo), "diff", "--name-only", f"{branch}~1", branch) == SAMPLE
    assert git(origin_of(git_repo), "show", f"{branch}:{SAMPLE}") + "\n" == DOCUMENTED


# ---- the runner fails what the agents passed --------------------------------------------------

def test_a_security_finding_fails_the_cycle_before_the_evaluator_is_asked(tdev, git_repo, github):
    base = git(git_repo, "rev-parse", "HEAD")
    risky = SAMPLE_MODULE + '\n\ndef run(x):\n    """Evaluate x."""\n    return eval(x)\n'
    agents(tdev, implement={"patch": diff(SAMPLE, SAMPLE_MODULE, risky)},
           evaluate={"verdict": "pass", "notes": "looks fine to me"})
    result = evolve(tdev, git_repo, "--attempts", "1")
    assert result.returncode == 1
    record, tasks = the_evolution()
    assert record["status"] == "failed"
    assert record["error"] == "gates-failed: security 0->1 (must be <= 0)"
    assert f"{record['id']} failed: gates-failed: security" in result.stdout
    assert record["metrics_before"]["security"] == 0 and record["metrics_after"]["security"] == 1
    assert [(t["phase"], t["status"]) for t in tasks] == [(p, "succeeded") for p in PHASES[:3]]
    assert record["pr_number"] is None and not github.pulls
    assert_nothing_published(git_repo, base)


def test_a_patch_that_breaks_the_syntax_fails_although_the_figures_improve(tdev, git_repo, github):
    """The measurement leaves an unparsable file out, so lint and docstrings look better: the judge says no."""
    base = git(git_repo, "rev-parse", "HEAD")
    broken = SAMPLE_MODULE.replace("def add(a, b):", "def add(a, b:")
    agents(tdev, implement={"patch": diff(SAMPLE, SAMPLE_MODULE, broken)}, evaluate={"verdict": "pass"})
    result = evolve(tdev, git_repo, "--attempts", "1")
    assert result.returncode == 1
    record, _ = the_evolution()
    assert record["status"] == "failed"
    assert record["error"].startswith(f"syntax-error: {SAMPLE}: '(' was never closed")
    assert record["metrics_after"]["lint"] < record["metrics_before"]["lint"]
    assert record["pr_number"] is None and not github.pulls
    assert_nothing_published(git_repo, base)


@pytest.mark.parametrize("where", ["auto", "EVOLUTION_TEST_COMMAND"])
def test_failing_tests_fail_the_cycle(tdev, git_repo, github, where):
    """auto runs pytest on a target holding tests; tests elsewhere run through EVOLUTION_TEST_COMMAND."""
    env = {}
    if where == "auto":
        base = commit_file(git_repo, "packages/agents/test_sample.py", TESTS)
    else:
        base = commit_file(git_repo, "checks/test_sample.py", TESTS)
        env["EVOLUTION_TEST_COMMAND"] = shlex.join([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                                    "checks"])
    broken = SAMPLE_MODULE.replace("return a+b", "return a-b")
    agents(tdev, implement={"patch": diff(SAMPLE, SAMPLE_MODULE, broken)}, evaluate={"verdict": "pass"})
    result = evolve(tdev, git_repo, "--attempts", "1", env=env)
    assert result.returncode == 1
    record, tasks = the_evolution()
    assert record["status"] == "failed" and record["tests"] == "failed"
    if where == "auto":  # pytest's own report names the test the change broke
        assert record["error"].startswith("tests failed: packages.agents.test_sample::test_add (exit 1: ")
    else:  # another command is judged by its exit code
        assert record["error"].startswith("tests failed: exit 1: ")
    assert "1 failed" in record["error"]
    assert "gates-failed" not in record["error"]  # the change is as good as before by every measure
    assert tasks[-1]["phase"] == "implement"  # the evaluator is asked only about a change the runner passed
    assert record["pr_number"] is None and not github.pulls
    assert_nothing_published(git_repo, base)


def test_the_evaluator_vetoes_a_change_the_runner_passed(tdev, git_repo, github):
    base = git(git_repo, "rev-parse", "HEAD")
    agents(tdev, implement={"patch": DOCSTRINGS}, evaluate={"verdict": "fail", "notes": "the docstrings say nothing"})
    result = evolve(tdev, git_repo, "--focus", "docs", "--attempts", "1")
    assert result.returncode == 1
    record, tasks = the_evolution()
    assert record["status"] == "failed"
    assert record["error"] == "vetoed: evaluator-agent: the docstrings say nothing"
    assert record["metrics_after"]["docstring"] == 100.0  # the runner alone would have passed it
    assert tasks[-1]["status"] == "succeeded" and tasks[-1]["error"] is None
    assert record["pr_number"] is None and not github.pulls
    assert_nothing_published(git_repo, base)


# ---- nothing to change -------------------------------------------------------------------------

@pytest.mark.parametrize("registry", ["empty-patch", "local-agents"])
def test_no_change_ends_unchanged_and_exits_0(tdev, git_repo, github, registry):
    """An empty patch, or the local agents asked for docs (no safe change without a model)."""
    base = git(git_repo, "rev-parse", "HEAD")
    if registry == "empty-patch":
        agents(tdev, implement={"patch": "", "summary": "nothing worth changing"})
    result = evolve(tdev, git_repo, "--focus", "docs")
    assert result.returncode == 0, result.stdout + result.stderr
    record, tasks = the_evolution()
    assert (record["status"], record["error"]) == ("unchanged", None)
    assert result.stdout.strip().splitlines()[-1] == f"{record['id']} unchanged"
    assert [(t["phase"], t["status"]) for t in tasks] == [(p, "succeeded") for p in PHASES[:3]]
    assert record["metrics_before"]["docstring"] == 20.0 and record["metrics_after"] is None
    assert record["files_changed"] == 0 and record["tests"] is None
    assert tasks[-1]["output_summary"] == "no change"
    if registry == "local-agents":  # the log says why
        assert "no safe change exists for docs without a model" in result.stdout
    assert record["pr_number"] is None and not github.pulls
    assert_nothing_published(git_repo, base)


def test_help_says_unchanged_exits_0(tdev):
    result = tdev.run("run_evolution.py", "--help")
    text = " ".join(result.stdout.split())
    assert result.returncode == 0 and "0 succeeded or unchanged" in text and "1 otherwise" in text


def test_tests_past_their_timeout_fail_the_cycle_and_leave_no_process(tdev, git_repo, tmp_path):
    """The test command and everything it started end at evolution.test_timeout_seconds. The suite is quick
    on the base (the baseline) and hangs on the change."""
    pids = tmp_path / "pids"
    suite = tmp_path / "suite.py"
    suite.write_text("import os, subprocess, sys, time\n"
                     f"if 'The sum' not in open({SAMPLE!r}).read():\n    sys.exit(0)\n"
                     "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
                     f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
                     "time.sleep(120)\n")
    tdev.write_config("settings", "evolution:\n  test_timeout_seconds: 2\n")
    agents(tdev, implement={"patch": DOCSTRINGS}, evaluate={"verdict": "pass"})
    result = evolve(tdev, git_repo, "--focus", "docs", "--attempts", "1",
                    env={"EVOLUTION_TEST_COMMAND": f"{sys.executable} {suite}"})
    assert result.returncode == 1
    record, _ = the_evolution()
    assert record["tests"] == "failed" and record["error"] == "tests failed: timed out after 2s"
    for pid in map(int, pids.read_text().split()):
        assert not procs.alive(pid), f"process {pid} of the test run outlived its timeout"


def test_a_second_cycle_starts_from_the_first_ones_commit(tdev, git_repo, github):
    """Cycle 2 is measured on cycle 1's result; changing nothing more, the evolution still succeeded."""
    kept = tdev.base / "implement_input.json"
    only_once = ("if json.loads(payload)['cycle'] > 1:\n"
                 "    print(json.dumps({'status': 'ok', 'output': {'patch': ''}}))\n"
                 "    sys.exit(0)")
    tdev.use_agents({"implement": reply_agent(tdev.base, "implement", {"patch": DOCSTRINGS}, keep_input=kept,
                                              before=only_once)})
    result = evolve(tdev, git_repo, "--focus", "docs", "--cycles", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    record, tasks = the_evolution()
    assert record["status"] == "succeeded" and record["current_cycle"] == 2
    assert [(t["cycle"], t["phase"]) for t in tasks] == [(1, p) for p in PHASES] + [(2, p) for p in PHASES[:3]]
    second = json.loads(kept.read_text())
    assert second["cycle"] == 2 and second["metrics"]["docstring"] == 100.0
    assert second["repo"]["base_sha"] == git(git_repo, "rev-parse", "HEAD")
    assert record["metrics_before"]["docstring"] == 20.0 and record["metrics_after"]["docstring"] == 100.0
    assert len(github.pulls) == 1 and record["files_changed"] == 1
