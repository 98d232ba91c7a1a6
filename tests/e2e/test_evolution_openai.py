"""End to end: an evolution whose four phases run on an OpenAI-compatible endpoint (the local stand-in),
given with run_evolution.py --agents FILE; its tokens, cached tokens and cost are recorded and shown,
its budget is reserved before each call, and the key is never in any output or artifact."""

from __future__ import annotations

import json

import pytest
from evolution_agents import DOCSTRINGS, DOCUMENTED, SAMPLE, evolve, origin_of, the_evolution
from openai_standin import phase_replies

from tests.conftest import PHASE_AGENTS, git

KEY = "sk-standin-9f3c1a7e5b2d4c6a8e0f"
PRICES = {"price_per_1k_input_usd": 0.002, "price_per_1k_output_usd": 0.01, "price_per_1k_cache_read_usd": 0.0005}
OUTPUTS = {"research": {"summary": "sample.py has no docstrings"}, "plan": {"files": [SAMPLE]},
           "implement": {"patch": DOCSTRINGS}, "evaluate": {"verdict": "pass", "notes": "documented"}}


def openai_registry(tmp_path, standin, **extra) -> str:
    """An agents file in the shape of agents.yaml: every phase on the stand-in, the key from the environment."""
    lines = ["agents:"]
    for phase, name in PHASE_AGENTS.items():
        lines.append("  - " + json.dumps({"name": name, "phase": phase, "runtime": "openai",
                                          "base_url": standin.base_url, "model": "qwen2.5-coder:32b",
                                          "api_key_env": "TEST_LLM_KEY", "max_tokens": 1000, **PRICES, **extra}))
    path = tmp_path / "agents-openai.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_an_evolution_succeeds_through_an_openai_endpoint_and_records_what_it_cost(tdev, git_repo, openai_server,
                                                                                     tmp_path):
    openai_server.default = phase_replies(OUTPUTS)
    agents_file = openai_registry(tmp_path, openai_server)
    result = evolve(tdev, git_repo, "--focus", "docs", "--agents", agents_file, env={"TEST_LLM_KEY": KEY})
    assert result.returncode == 0, result.stdout + result.stderr
    record, tasks = the_evolution()
    assert (record["status"], record["error"], record["agents_file"]) == ("succeeded", None, agents_file)
    [branch] = git(origin_of(git_repo), "for-each-ref", "--format=%(refname:short)", "refs/heads/tdev/").split()
    assert git(origin_of(git_repo), "show", f"{branch}:{SAMPLE}") + "\n" == DOCUMENTED
    assert [t["phase"] for t in tasks] == ["research", "plan", "implement", "evaluate"]
    assert len(openai_server.requests) == 4
    for request in openai_server.requests:
        assert request["path"] == "/v1/chat/completions"
        assert request["headers"]["Authorization"] == f"Bearer {KEY}"
        assert request["body"]["model"] == "qwen2.5-coder:32b" and request["body"]["max_tokens"] == 1000
    for task in tasks:  # the stand-in's default usage: 100 prompt tokens, 50 completion tokens, none cached
        assert (task["tokens_in"], task["tokens_out"], task["tokens_cached"]) == (100, 50, 0)
        assert task["cost_usd"] == pytest.approx(0.1 * 0.002 + 0.05 * 0.01)
    assert record["cost_usd"] == pytest.approx(4 * (0.1 * 0.002 + 0.05 * 0.01))
    shown = tdev.run("show_evolution_history.py", "--limit", "5")
    assert shown.returncode == 0 and "TOKENS" in shown.stdout and "COST" in shown.stdout
    assert "600" in shown.stdout  # 4 x (100 + 50) tokens
    outputs = result.stdout + result.stderr + shown.stdout + shown.stderr
    assert KEY not in outputs
    for path in tdev.base.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_cached_prompt_tokens_are_recorded_and_priced_at_the_cache_price(tdev, git_repo, openai_server, tmp_path):
    phases = phase_replies(OUTPUTS)
    openai_server.reply(phases({"body": {"messages": [{"content": "# Phase: research"}]}}), prompt_tokens=3000,
                        completion_tokens=100, cached_tokens=0)
    openai_server.reply(phases({"body": {"messages": [{"content": "# Phase: plan"}]}}), prompt_tokens=3000,
                        completion_tokens=100, cached_tokens=2500)
    openai_server.default = phases
    result = evolve(tdev, git_repo, "--focus", "docs", "--agents", openai_registry(tmp_path, openai_server),
                    env={"TEST_LLM_KEY": KEY})
    assert result.returncode == 0, result.stdout + result.stderr
    _, tasks = the_evolution()
    plan = tasks[1]
    assert (plan["tokens_in"], plan["tokens_cached"]) == (3000, 2500)
    assert plan["cost_usd"] == pytest.approx(0.5 * 0.002 + 2.5 * 0.0005 + 0.1 * 0.01)
    failure = tdev.run("analyze_failure.py", "--id", tasks[0]["evolution_id"], "--json")
    assert failure.returncode == 0, failure.stderr
    assert json.loads(failure.stdout)["tasks"][1]["tokens_cached"] == 2500
    table = tdev.run("analyze_failure.py", "--id", tasks[0]["evolution_id"])
    assert "TOKENS IN/OUT" in table.stdout and "3,000/100 (2,500 cached)" in table.stdout
    task = tdev.run("show_failure.py", "--id", plan["id"])
    assert task.returncode == 0 and "tokens     3,000/100 (2,500 cached) (input/output)" in task.stdout


def test_a_call_that_could_overshoot_the_budget_is_not_made(tdev, git_repo, openai_server, tmp_path):
    openai_server.default = phase_replies(OUTPUTS)
    agents_file = openai_registry(tmp_path, openai_server)
    # research's worst case: a few thousand prompt tokens at $0.002/1k plus 1000 output tokens at $0.01/1k > $0.01
    result = evolve(tdev, git_repo, "--focus", "docs", "--agents", agents_file, "--budget-usd", "0.01",
                    env={"TEST_LLM_KEY": KEY})
    assert result.returncode == 1
    record, tasks = the_evolution()
    assert record["status"] == "failed" and record["error"].startswith("cost-limit: research-agent could cost up to")
    assert record["budget_usd"] == 0.01 and record["cost_usd"] == 0
    assert openai_server.requests == []
    assert tasks[0]["status"] == "failed" and tasks[0]["error"].startswith("cost-limit:")


def test_two_agents_for_one_phase_are_refused_before_anything_starts(tdev, git_repo, openai_server, tmp_path):
    agents_file = openai_registry(tmp_path, openai_server)
    with open(agents_file, "a") as registry:
        registry.write('  - {"name": "second-planner", "phase": "plan", "runtime": "local"}\n')
    result = evolve(tdev, git_repo, "--agents", agents_file)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and "a second agent for phase plan (second-planner" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("amount", ["0", "-1", "nan"])
def test_a_budget_that_is_not_a_positive_amount_is_a_usage_error(tdev, git_repo, amount):
    result = evolve(tdev, git_repo, "--budget-usd", amount)
    assert result.returncode == 2 and result.stderr.startswith("error: --budget-usd must be a positive amount")
    assert "Traceback" not in result.stderr


def test_a_missing_agents_file_is_a_usage_error(tdev, git_repo, tmp_path):
    result = evolve(tdev, git_repo, "--agents", str(tmp_path / "nowhere.yaml"))
    assert result.returncode == 2 and "--agents" in result.stderr and "no such file" in result.stderr
