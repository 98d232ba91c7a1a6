"""End to end: an evolution whose four phases run on the Converse stand-in, which refuses any request
without a cachePoint and counts cache reads as Bedrock does: the later phases of the cycle read the
files from the cache, and the tasks record and price those tokens."""

from __future__ import annotations

import json

import pytest
from aws_helpers import fresh_clients, registry  # noqa: F401
from bedrock_standin import converse_answer
from evolution_agents import DOCSTRINGS, SAMPLE, evolve, the_evolution

from tests.conftest import PHASE_AGENTS

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
PRICES = {"price_per_1k_input_usd": 0.003, "price_per_1k_output_usd": 0.015, "price_per_1k_cache_read_usd": 0.0003}
REPLIES = {"research": '```json\n{"summary": "no docstrings"}\n```',
           "plan": f'```json\n{json.dumps({"files": [SAMPLE]})}\n```',
           "implement": f"Docstrings.\n```diff\n{DOCSTRINGS}```\n",
           "evaluate": '```json\n{"verdict": "pass"}\n```'}


def answer(request: dict) -> dict:
    message = request["body"]["messages"][0]["content"][0]["text"]
    return converse_answer(REPLIES[message.split("# Phase: ", 1)[1].split()[0]], output_tokens=100)


@pytest.mark.parametrize("budget", [None, "5"])
def test_the_later_phases_read_the_files_from_the_prompt_cache(tdev, git_repo, bedrock, budget):
    registry(tdev, [{"name": name, "phase": phase, "runtime": "bedrock", "model_id": MODEL, **PRICES}
                    for phase, name in PHASE_AGENTS.items()])
    bedrock.require_cache_point, bedrock.count_tokens, bedrock.default = True, True, answer
    result = evolve(tdev, git_repo, "--focus", "docs", *(["--budget-usd", budget] if budget else []))
    assert result.returncode == 0, result.stdout + result.stderr
    record, tasks = the_evolution()
    assert record["status"] == "succeeded" and record["budget_usd"] == (float(budget) if budget else None)
    assert len(bedrock.requests) == 4
    research, plan, implement, evaluate = tasks
    # research writes the target's files to the cache and plan reads them; implement gets the planned files (a new
    # prefix) and evaluate the changed contents (another one)
    assert 0 < plan["tokens_cached"] < plan["tokens_in"]
    assert research["tokens_cached"] == implement["tokens_cached"] == evaluate["tokens_cached"] == 0
    assert plan["model"] == MODEL
    billed = plan["tokens_in"] - plan["tokens_cached"]
    assert plan["cost_usd"] == pytest.approx(billed / 1000 * 0.003 + plan["tokens_cached"] / 1000 * 0.0003
                                             + 100 / 1000 * 0.015)
    assert record["cost_usd"] == pytest.approx(sum(t["cost_usd"] for t in tasks), abs=1e-6)  # stored to 6 places


def test_the_settings_budget_caps_an_evolution_without_the_flag(tdev, git_repo, bedrock):
    registry(tdev, [{"name": name, "phase": phase, "runtime": "bedrock", "model_id": MODEL, **PRICES}
                    for phase, name in PHASE_AGENTS.items()])
    tdev.write_config("settings", "evolution:\n  max_cost_usd: 0.05\n")
    bedrock.count_tokens, bedrock.default = True, answer
    result = evolve(tdev, git_repo, "--focus", "docs")
    assert result.returncode == 1
    record, tasks = the_evolution()
    # research's worst case (its prompt estimate plus 8192 output tokens at $0.015/1k, over $0.12) does not fit
    assert record["status"] == "failed" and record["error"].startswith("cost-limit: research-agent could cost")
    assert record["budget_usd"] == 0.05 and bedrock.requests == [] and len(tasks) == 1
