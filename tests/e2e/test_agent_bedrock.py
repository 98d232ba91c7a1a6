"""The bedrock runtime against a local Converse stand-in over HTTP (real boto3, dummy credentials)."""

from __future__ import annotations

import pytest
from aws_helpers import fresh_clients  # noqa: F401 - autouse: clients made for this test's endpoint
from model_samples import PATCH, SAMPLE

from lib import agents
from lib.agents import AgentError
from lib.agents.bedrock import BedrockRuntime
from lib.agents.prompting import PROMPTS_DIR

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"


def payload(phase: str = "implement") -> dict:
    return {"evolution_id": "evo-1", "task_id": "task-1", "cycle": 1, "phase": phase,
            "target": "packages/agents", "worktree": "/tmp/wt", "focus": "docs", "dry_run": False,
            "repo": {"remote_url": None, "base_sha": "abc123", "branch": "main"},
            "files": [{"path": "packages/agents/sample.py", "content": SAMPLE},
                      {"path": "packages/agents/big.py", "content": None}],
            "patterns": [], "gates": {"docstring": {"threshold": 80, "direction": "min"}},
            "metrics": {"docstring": 0.0}, "context": {"plan": {"files": ["packages/agents/sample.py"]}},
            "traceparent": None}


def agent(**fields) -> dict:
    return {"name": "refactor-agent", "phase": "implement", "runtime": "bedrock", "model_id": MODEL,
            "price_per_1k_input_usd": 0.003, "price_per_1k_output_usd": 0.015, **fields}


def test_a_diff_reply_gives_the_patch_tokens_and_cost(bedrock):
    bedrock.reply(f"Added a docstring to add().\n\n```diff\n{PATCH}```\n", input_tokens=1200, output_tokens=300)
    answer = agents.runtime(agent()).invoke(payload(), timeout=30)
    assert answer["status"] == "ok" and answer["error"] is None
    assert answer["output"] == {"patch": PATCH, "summary": "Added a docstring to add()."}
    assert answer["tokens"] == {"input": 1200, "output": 300, "cached": 0}
    assert answer["cost_usd"] == pytest.approx(1200 / 1000 * 0.003 + 300 / 1000 * 0.015)


def test_the_request_carries_the_model_the_prompt_and_the_files(bedrock):
    bedrock.reply("Nothing to change.\n```diff\n```\n")
    answer = agents.runtime(agent(max_tokens=2048, temperature=0.2)).invoke(payload(), timeout=30)
    assert answer["output"]["patch"] == ""
    [request] = bedrock.requests
    assert request["model_id"] == MODEL
    body = request["body"]
    files, cache_point, instructions = body["system"]
    assert cache_point == {"cachePoint": {"type": "default"}}
    assert instructions == {"text": (PROMPTS_DIR / "implement.md").read_text()}
    assert body["inferenceConfig"] == {"maxTokens": 2048, "temperature": 0.2}
    text = files["text"]
    assert "1| def add(a, b):\n2|     return a+b\n" in text and "packages/agents/sample.py" in text
    assert "## packages/agents/big.py\n(content not included" in text
    message = body["messages"][0]["content"][0]["text"]
    assert message.startswith("# Phase: implement (cycle 1)") and '"packages/agents/sample.py"' in message
    assert "/tmp/wt" not in text + message


def test_research_reply_is_the_last_json_block(bedrock):
    bedrock.reply('Draft:\n```json\n{"summary": "draft"}\n```\nFinal:\n```json\n'
                  '{"summary": "one function lacks a docstring", "findings": '
                  '[{"path": "packages/agents/sample.py", "line": 1, "message": "no docstring"}]}\n```')
    answer = agents.runtime(agent(name="research-agent", phase="research")).invoke(payload("research"), 30)
    assert answer["output"]["summary"] == "one function lacks a docstring"
    assert answer["output"]["findings"][0]["line"] == 1


def test_a_reply_without_a_diff_block_is_bad_output_and_still_costs(bedrock):
    bedrock.reply("I would add a docstring to add().", input_tokens=1000, output_tokens=10)
    with pytest.raises(AgentError, match=r"^bad-output: refactor-agent: no fenced ```diff or ```json block") as failure:
        agents.runtime(agent()).invoke(payload(), timeout=30)
    assert failure.value.tokens == {"input": 1000, "output": 10, "cached": 0}
    assert failure.value.cost_usd == pytest.approx(0.003 + 0.00015)


def test_throttling_is_retried_then_succeeds(bedrock):
    bedrock.error(429, "ThrottlingException", "Too many requests, please wait before trying again.")
    bedrock.error(503, "ServiceUnavailableException", "Service unavailable")
    bedrock.reply(f"```diff\n{PATCH}```")
    waits = []
    answer = BedrockRuntime(agent(), sleep=waits.append).invoke(payload(), timeout=300)
    assert answer["output"]["patch"] == PATCH
    assert len(bedrock.requests) == 3
    assert len(waits) == 2 and 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0


def test_access_denied_is_one_line_naming_the_model(bedrock):
    bedrock.error(403, "AccessDeniedException", "You don't have access to the model with the specified model ID.")
    with pytest.raises(AgentError, match=rf"^agent-error: refactor-agent: .*{MODEL}.*AccessDeniedException") as failure:
        agents.runtime(agent()).invoke(payload(), timeout=30)
    assert MODEL in failure.value.hint
    assert len(bedrock.requests) == 1


def test_a_huge_reply_is_parsed(bedrock):
    added = "".join(f"+x{i} = {i}\n" for i in range(600_000))
    huge = f"diff --git a/packages/agents/big.py b/packages/agents/big.py\n@@ -0,0 +1,600000 @@\n{added}"
    assert len(huge) > 5_000_000
    bedrock.reply(f"A large change.\n```diff\n{huge}```\n", output_tokens=2_000_000)
    answer = agents.runtime(agent()).invoke(payload(), timeout=60)
    assert answer["output"]["patch"] == huge
    bedrock.reply("`" * 5_000_000)
    with pytest.raises(AgentError, match="^bad-output: refactor-agent: no fenced ```diff or ```json block"):
        agents.runtime(agent()).invoke(payload(), timeout=60)


def test_prompt_file_replaces_the_built_in_prompt(bedrock, tdev, monkeypatch):
    monkeypatch.setenv("TDEV_HOME", str(tdev.base))
    (tdev.base / "prompts").mkdir()
    (tdev.base / "prompts" / "implement.md").write_text("Our own implement prompt.\n")
    bedrock.reply("```diff\n```")
    agents.runtime(agent(prompt_file="prompts/implement.md")).invoke(payload(), timeout=30)
    system = bedrock.requests[0]["body"]["system"]
    assert system[1:] == [{"cachePoint": {"type": "default"}}, {"text": "Our own implement prompt.\n"}]
