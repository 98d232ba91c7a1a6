"""End to end: implement agents that are not on this machine. A `bedrock` agent (the Converse
stand-in) and a `lambda` agent (moto) answer with a patch; the runner applies it in its worktree,
judges, commits and pushes it, and records what the call cost.
"""

from __future__ import annotations

import json

import pytest
from aws_helpers import fresh_clients, make_function, queue_lambda_results, registry  # noqa: F401
from evolution_agents import (
    DOCSTRINGS,
    DOCUMENTED,
    SAMPLE,
    TARGET,
    auto_branches,
    evolve,
    origin_of,
    the_evolution,
)

from lib.agents.prompting import numbered
from tests.conftest import SAMPLE_MODULE, git

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
LOCAL = [{"name": "research-agent", "phase": "research", "runtime": "local"},
         {"name": "planner-agent", "phase": "plan", "runtime": "local"},
         {"name": "evaluator-agent", "phase": "evaluate", "runtime": "local"}]


def with_implement(tdev, implement: dict) -> None:
    """The local agents for research, plan and evaluate; refactor-agent as given for implement."""
    registry(tdev, [*LOCAL[:2], {"name": "refactor-agent", "phase": "implement", **implement}, LOCAL[2]])


def assert_committed_and_pushed(git_repo, record: dict) -> str:
    """The documented module is on the evolution's branch, here and on origin; the checkout is untouched."""
    [branch] = auto_branches(git_repo)
    assert auto_branches(origin_of(git_repo)) == [branch]
    assert git(origin_of(git_repo), "show", f"{branch}:{SAMPLE}") + "\n" == DOCUMENTED
    assert (git_repo / SAMPLE).read_text() == SAMPLE_MODULE and git(git_repo, "status", "--porcelain") == ""
    assert record["files_changed"] == 1
    return branch


def test_a_bedrock_agent_documents_the_code_and_the_pr_shows_the_rise(tdev, git_repo, github, bedrock):
    with_implement(tdev, {"runtime": "bedrock", "model_id": MODEL, "price_per_1k_input_usd": 0.003,
                          "price_per_1k_output_usd": 0.015})
    bedrock.reply(f"Docstrings for the module, add, Greeter and greet.\n\n```diff\n{DOCSTRINGS}```\n",
                  input_tokens=1200, output_tokens=300)
    result = evolve(tdev, git_repo, "--focus", "docs")
    assert result.returncode == 0, result.stdout + result.stderr
    record, tasks = the_evolution()
    assert (record["status"], record["error"]) == ("succeeded", None)
    assert record["metrics_before"]["docstring"] == 20.0 and record["metrics_after"]["docstring"] == 100.0
    assert_committed_and_pushed(git_repo, record)
    body = github.pulls[record["pr_number"]]["body"]
    assert "| Docstring coverage | 20.0% | 100.0% |" in body and "Tests: **not run**" in body
    implement = next(t for t in tasks if t["phase"] == "implement")
    assert (implement["tokens_in"], implement["tokens_out"]) == (1200, 300)
    assert implement["cost_usd"] == pytest.approx(1200 / 1000 * 0.003 + 300 / 1000 * 0.015)
    assert record["cost_usd"] == pytest.approx(implement["cost_usd"])
    assert implement["output_summary"].startswith("patch of ")
    [request] = bedrock.requests  # one call, for implement: the planned file's content in the prompt
    assert request["model_id"] == MODEL
    prompt = request["body"]["system"][0]["text"] + request["body"]["messages"][0]["content"][0]["text"]
    assert SAMPLE in prompt and numbered(SAMPLE_MODULE) in prompt and str(tdev.history) not in prompt


def test_a_refused_model_reply_is_still_paid_for(tdev, git_repo, bedrock):
    """A reply without a diff block fails the task, and what the call cost counts all the same."""
    with_implement(tdev, {"runtime": "bedrock", "model_id": MODEL, "price_per_1k_input_usd": 0.003,
                          "price_per_1k_output_usd": 0.015})
    bedrock.reply("I would add docstrings to add() and greet().", input_tokens=1000, output_tokens=10)
    result = evolve(tdev, git_repo, "--focus", "docs")
    assert result.returncode == 1
    record, tasks = the_evolution()
    implement = tasks[-1]
    assert implement["phase"] == "implement" and implement["status"] == "failed"
    assert implement["error"].startswith("bad-output: refactor-agent: no fenced ```diff or ```json block")
    assert (implement["tokens_in"], implement["tokens_out"]) == (1000, 10)
    assert implement["cost_usd"] == pytest.approx(1000 / 1000 * 0.003 + 10 / 1000 * 0.015)
    assert record["status"] == "failed" and record["cost_usd"] == pytest.approx(implement["cost_usd"])


def test_a_lambda_agent_patch_is_applied_and_committed(tdev, git_repo, aws):
    make_function("refactor-agent")
    with_implement(tdev, {"runtime": "lambda", "function_name": "refactor-agent"})
    queue_lambda_results(aws["endpoint"], [{"status": "ok", "output": {"patch": DOCSTRINGS, "summary": "docstrings"},
                                            "cost_usd": 0.02, "tokens": {"input": 900, "output": 40}}])
    result = evolve(tdev, git_repo, "--focus", "docs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "GitHub not configured" in result.stdout  # pushed, no PR
    record, tasks = the_evolution()
    assert record["status"] == "succeeded" and record["pr_number"] is None
    branch = assert_committed_and_pushed(git_repo, record)
    message = git(git_repo, "log", "-1", "--format=%B", branch)
    assert "Metrics-Impact: docstring 20.0->100.0" in message and f"Evolution-Context: {record['id']}" in message
    implement = next(t for t in tasks if t["phase"] == "implement")
    assert (implement["tokens_in"], implement["tokens_out"], implement["cost_usd"]) == (900, 40, 0.02)
    artifact = json.loads((tdev.history / record["id"] / "tasks" / f"{implement['id']}.json").read_text())
    assert artifact["input"]["worktree"] is None and artifact["input"]["target"] == TARGET  # not on this machine
