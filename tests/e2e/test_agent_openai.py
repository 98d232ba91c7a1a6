"""The openai runtime against the local OpenAI-compatible stand-in over HTTP (real requests, real sockets)."""

from __future__ import annotations

import json

import pytest
from aws_helpers import client, fresh_clients  # noqa: F401 - autouse: clients made for this test's endpoint
from model_samples import PATCH, SAMPLE

from lib import agents
from lib.agents import AgentError
from lib.agents.openai_chat import OpenAIRuntime
from lib.agents.prompting import PROMPTS_DIR

KEY = "sk-standin-4c2e8a0b6d1f3e5a7c9b"


def payload(phase: str = "implement") -> dict:
    return {"evolution_id": "evo-1", "task_id": "task-1", "cycle": 1, "attempt": 1, "phase": phase,
            "target": "packages/agents", "worktree": "/tmp/wt", "focus": "docs", "dry_run": False,
            "files": [{"path": "packages/agents/sample.py", "content": SAMPLE}],
            "patterns": [], "gates": {}, "metrics": {}, "context": {}, "feedback": [], "history": []}


def agent(standin, **fields) -> dict:
    return {"name": "refactor-agent", "phase": "implement", "runtime": "openai", "base_url": standin.base_url,
            "model": "llama3.1:70b", "price_per_1k_input_usd": 0.002, "price_per_1k_output_usd": 0.01,
            "price_per_1k_cache_read_usd": 0.0005, **fields}


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", KEY)
    return KEY


def test_a_diff_reply_gives_the_patch_tokens_cached_tokens_and_cost(openai_server):
    openai_server.reply(f"Docstring for add().\n```diff\n{PATCH}```\n", prompt_tokens=2000, completion_tokens=300,
                        cached_tokens=1500)
    answer = agents.runtime(agent(openai_server)).invoke(payload(), timeout=30)
    assert answer["output"] == {"patch": PATCH, "summary": "Docstring for add()."}
    assert answer["tokens"] == {"input": 2000, "output": 300, "cached": 1500}
    assert answer["cost_usd"] == pytest.approx(0.5 * 0.002 + 1.5 * 0.0005 + 0.3 * 0.01)


def test_the_request_is_the_pinned_chat_completions_shape_with_the_key_as_bearer(openai_server, key):
    openai_server.reply("```diff\n```")
    agents.runtime(agent(openai_server, api_key_env="TEST_LLM_KEY", max_tokens=2048, temperature=0.2)).invoke(
        payload(), timeout=30)
    [request] = openai_server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert (body["model"], body["max_tokens"], body["temperature"], body["stream"]) == ("llama3.1:70b", 2048, 0.2,
                                                                                        False)
    system, user = body["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    assert "1| def add(a, b):" in system["content"]
    assert system["content"].endswith((PROMPTS_DIR / "implement.md").read_text())
    assert user["content"].startswith("# Phase: implement (cycle 1)") and "/tmp/wt" not in str(body)


def test_a_local_server_needs_no_key(openai_server):
    openai_server.reply("```diff\n```")
    agents.runtime(agent(openai_server)).invoke(payload(), timeout=30)
    assert "Authorization" not in openai_server.requests[0]["headers"]


def test_429_then_success_honours_retry_after(openai_server):
    openai_server.error(429, "rate limited", retry_after="7")
    openai_server.error(503, "loading model")
    openai_server.reply(f"```diff\n{PATCH}```")
    waits = []
    answer = OpenAIRuntime(agent(openai_server), sleep=waits.append, jitter=lambda: 0.0).invoke(payload(), 300)
    assert answer["output"]["patch"] == PATCH and len(openai_server.requests) == 3
    assert waits == [7.0, 1.0]  # Retry-After as given, then backoff (attempt 2: base x 2, half of it at jitter 0)


def test_retries_stop_within_the_phase_timeout(openai_server):
    for _ in range(3):
        openai_server.error(429, "rate limited", retry_after="20")
    now, waits = [0.0], []

    def sleep(seconds: float) -> None:  # a clock that moves only when the runtime waits
        waits.append(seconds)
        now[0] += seconds

    with pytest.raises(AgentError, match=r"^timeout: refactor-agent: .* still answered 429 .* within 45s"):
        OpenAIRuntime(agent(openai_server), sleep=sleep, clock=lambda: now[0]).invoke(payload(), timeout=45)
    assert waits == [20.0, 20.0] and len(openai_server.requests) == 3  # a third 20 s wait would pass 45 s


def test_a_slow_answer_is_cut_at_the_phase_timeout(openai_server):
    gate = openai_server.hold()
    try:
        with pytest.raises(AgentError, match=r"^timeout: refactor-agent: no answer from llama3.1:70b .* within 1s"):
            agents.runtime(agent(openai_server)).invoke(payload(), timeout=1)
    finally:
        gate.set()
    assert len(openai_server.requests) == 1


def test_the_key_is_never_in_an_error_even_when_the_server_echoes_it(openai_server, key):
    openai_server.error(401, f"Incorrect API key provided: {KEY}")
    with pytest.raises(AgentError) as failure:
        agents.runtime(agent(openai_server, api_key_env="TEST_LLM_KEY")).invoke(payload(), timeout=30)
    assert failure.value.message.startswith("agent-error: refactor-agent: ") and "answered 401" in failure.value.message
    assert KEY not in failure.value.message and KEY not in (failure.value.hint or "")
    assert "api_key_env" in failure.value.hint


def test_a_missing_key_variable_is_one_line_naming_it(openai_server, monkeypatch):
    monkeypatch.delenv("TEST_LLM_KEY", raising=False)
    with pytest.raises(AgentError, match=r"^agent-error: refactor-agent: environment variable TEST_LLM_KEY"):
        agents.runtime(agent(openai_server, api_key_env="TEST_LLM_KEY")).invoke(payload(), timeout=30)
    assert openai_server.requests == []


def test_json_edits_are_an_implement_reply(openai_server):
    edits = {"edits": [{"path": "packages/agents/sample.py", "search": "    return a+b\n",
                        "replace": '    """Sum."""\n    return a+b\n'}]}
    openai_server.reply(f"Add a docstring.\n```json\n{json.dumps(edits)}\n```")
    output = agents.runtime(agent(openai_server)).invoke(payload(), timeout=30)["output"]
    assert output["edits"][0]["replace"] == '    """Sum."""\n    return a+b\n'
    assert output["summary"] == "Add a docstring."


def test_a_reply_without_a_block_is_bad_output_and_still_costs(openai_server):
    openai_server.reply("I would add docstrings.", prompt_tokens=1000, completion_tokens=10, finish_reason="length")
    with pytest.raises(AgentError, match=r"^bad-output: refactor-agent: no fenced ```diff or ```json block "
                                         r"\(the reply was cut at max_tokens") as failure:
        agents.runtime(agent(openai_server)).invoke(payload(), timeout=30)
    assert failure.value.tokens == {"input": 1000, "output": 10, "cached": 0}
    assert failure.value.cost_usd == pytest.approx(0.002 + 0.0001)


def test_an_unreachable_server_is_one_line(openai_server):
    openai_server.stop()
    with pytest.raises(AgentError, match=r"^agent-error: refactor-agent: cannot reach http://127\.0\.0\.1"):
        agents.runtime(agent(openai_server)).invoke(payload(), timeout=30)


def test_the_key_can_come_from_secrets_manager(openai_server, aws):
    from lib.adapters import aws as aws_adapter

    aws_adapter.secret_string.cache_clear()
    client("secretsmanager").create_secret(Name="llm/api-key", SecretString=KEY)
    openai_server.reply("```diff\n```")
    agents.runtime(agent(openai_server, api_key_secret="llm/api-key")).invoke(payload(), timeout=30)
    assert openai_server.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    aws_adapter.secret_string.cache_clear()
    with pytest.raises(AgentError, match=r"^agent-error: refactor-agent: .*llm/missing") as failure:
        agents.runtime(agent(openai_server, api_key_secret="llm/missing")).invoke(payload(), timeout=30)
    assert KEY not in failure.value.message
