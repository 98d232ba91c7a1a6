"""The openai runtime's parts that need no server: usage, Retry-After, config checks of its registry entry."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from lib import config
from lib.agents.openai_chat import retry_after, usage_tokens
from lib.errors import ConfigError


def test_usage_counts_cached_prompt_tokens_within_the_prompt():
    assert usage_tokens({"prompt_tokens": 900, "completion_tokens": 40,
                         "prompt_tokens_details": {"cached_tokens": 600}}) == {"input": 900, "output": 40,
                                                                               "cached": 600}
    assert usage_tokens({"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 99}})["cached"] == 10
    assert usage_tokens(None) == {"input": 0, "output": 0, "cached": 0}
    assert usage_tokens({"prompt_tokens": -5, "completion_tokens": True}) == {"input": 0, "output": 0, "cached": 0}


def test_retry_after_takes_seconds_or_an_http_date():
    assert retry_after("12", 0) == 12.0
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after(format_datetime(datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC), usegmt=True),
                       now.timestamp()) == 30.0
    assert retry_after("soon", 0) is None and retry_after(None, 0) is None


AGENT = '  - {name: refactor-agent, phase: implement, runtime: openai, base_url: "http://127.0.0.1:8000/v1", ' \
        'model: m%s}\n'


@pytest.mark.parametrize("extra, message", [
    ("", None),
    (", timeout_seconds: 3601", "agents[0].timeout_seconds: at most 3600 for an openai agent"),
    (", api_key_env: sk-live-abc", "agents[0].api_key_env: expected the name of an environment variable"),
    (", api_key_env: KEY, api_key_secret: llm/key", "agents[0]: api_key_env and api_key_secret both given"),
])
def test_openai_entries_are_checked(tdev, extra, message):
    tdev.write_config("agents", "agents:\n" + AGENT % extra)
    if message is None:
        assert config.agents()[0]["base_url"] == "http://127.0.0.1:8000/v1"
        return
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config.agents()


def test_base_url_and_model_are_required_and_the_url_must_be_http(tdev):
    tdev.write_config("agents", "agents:\n  - {name: a, phase: plan, runtime: openai, model: m}\n")
    with pytest.raises(ConfigError, match=r"agents\[0\]: runtime openai needs 'base_url'"):
        config.agents()
    tdev.write_config("agents", "agents:\n  - {name: a, phase: plan, runtime: openai, model: m, base_url: host:80}\n")
    with pytest.raises(ConfigError, match=r"agents\[0\].base_url: expected an http\(s\) URL"):
        config.agents()


def test_two_implement_agents_need_candidates(tdev):
    tdev.write_config("agents", "agents:\n  - {name: a, phase: implement, runtime: local}\n"
                                "  - {name: b, phase: implement, runtime: local}\n")
    with pytest.raises(ConfigError, match=r"agents\[1\]: a second agent for phase implement \(b, after a\)"):
        config.agents()
    tdev.write_config("settings", "evolution:\n  candidates: 2\n")
    config.settings.cache_clear()
    assert [a["name"] for a in config.agents()] == ["a", "b"]


def test_an_agents_file_replaces_the_registry_in_this_process(tdev, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("agents:\n  - {name: only-agent, phase: plan, runtime: local}\n")
    try:
        config.use_agents_file(other)
        assert [a["name"] for a in config.agents()] == ["only-agent"]
    finally:
        config.use_agents_file(None)
    assert config.path_of("agents") == tdev.config_dir / "agents.yaml"
