"""The bedrock runtime's parts: reply parsing, the user message, backoff, errors, config and status."""

from __future__ import annotations

import pytest
from aws_helpers import fresh_clients  # noqa: F401 - autouse: clients made for this test's environment
from botocore.exceptions import ClientError, ReadTimeoutError

from lib import agents, config
from lib.adapters import aws
from lib.agents import AgentError
from lib.agents.bedrock import BedrockRuntime
from lib.agents.prompting import parse_reply, render_input
from lib.errors import ConfigError

MODEL = "amazon.nova-pro-v1:0"
AGENT = {"name": "planner-agent", "phase": "plan", "runtime": "bedrock", "model_id": MODEL}


# ---- the reply ------------------------------------------------------------------------------

def test_implement_takes_the_last_diff_block_and_the_text_around_it():
    reply = "First try:\n```diff\nold\n```\nBetter:\n\n```diff\n-a\n+b\n```\n  Done.  "
    assert parse_reply("implement", reply, "x") == {"patch": "-a\n+b\n",
                                                    "summary": "First try: ```diff old ``` Better: Done."}


def test_a_backtick_context_line_stays_inside_the_diff_block():
    diff = " intro\n ```\n-x\n+y\n ```"
    assert parse_reply("implement", f"```diff\n{diff}\n```", "x")["patch"] == f"{diff}\n"
    longer = "+```python\n+print(1)\n+```"
    assert parse_reply("implement", f"````diff\n{longer}\n````", "x")["patch"] == f"{longer}\n"


def test_an_empty_diff_block_is_no_change():
    assert parse_reply("implement", "No safe change.\n```diff\n\n```", "x")["patch"] == ""


def test_an_unclosed_block_cut_at_max_tokens_is_bad_output():
    with pytest.raises(AgentError, match=r"^bad-output: agent-x: the last ```diff block is not closed "
                                         r"\(the reply was cut at max_tokens"):
        parse_reply("implement", "```diff\n-a\n+b\n```\nagain:\n```diff\n-a\n", "agent-x", "max_tokens")


def test_json_phases_take_the_last_json_block():
    reply = 'Plan:\n```python\nx = 1\n```\n```json\n{"files": ["a.py"], "rationale": "r"}\n```\n'
    assert parse_reply("plan", reply, "x") == {"files": ["a.py"], "rationale": "r"}
    research = '```json\n{"summary": "s", "findings": [{"path": "a.py", "message": "literal password=hunter2"}]}\n```'
    assert parse_reply("research", research, "x")["findings"][0]["message"] == "literal password=***"


@pytest.mark.parametrize(("reply", "what"), [
    ("the plan is to change a.py", r"no fenced ```json block; the reply starts 'the plan is"),
    ("```json\n{'files': []}\n```", r"not valid JSON \(Expecting property name"),
    ('```json\n["a.py"]\n```', "is a list, not an object"),
    ("```json\n" + "[" * 200_000 + "\n```", "(nested too deeply|not valid JSON)"),
    ('```json\n{"a": ' + "[" * 990 + "]" * 990 + "}\n```", "nested too deeply"),
    ("", "no fenced ```json block; the reply is empty"),
])
def test_bad_json_replies_are_bad_output(reply, what):
    with pytest.raises(AgentError, match=rf"^bad-output: planner-agent: .*{what}"):
        parse_reply("plan", reply, "planner-agent")


def test_pathological_replies_take_one_pass():
    """Lines that make a backtracking fence regex quadratic, and one 5 MB line."""
    reply = ("```" + " " * 100_000 + "x`\n") * 20 + "x" + "`" * 5_000_000 + "\n```json\n{}\n```"
    assert parse_reply("evaluate", reply, "x") == {}


def test_the_summary_is_short_and_masked():
    reply = "token=abcdef0123456789 " + "word " * 1000 + "\n```diff\n```"
    summary = parse_reply("implement", reply, "x")["summary"]
    assert len(summary) <= 500 and "abcdef0123456789" not in summary


# ---- the user message -----------------------------------------------------------------------

def test_render_input_fences_files_and_shows_the_patch_as_text():
    text = render_input({
        "phase": "evaluate", "cycle": 2, "target": "pkg", "focus": "quality", "worktree": "/secret/wt",
        "files": [{"path": "pkg/readme.py", "content": 'doc = """\n```\n"""\n'},
                  {"path": "pkg/big.py", "content": None}],
        "patterns": [{"name": "no-migrations"}], "gates": {}, "metrics": {"lint": 3},
        "context": {"implement": {"patch": "-a\n+b\n", "summary": "s"}},
    })
    assert '````python\n1| doc = """\n2| ```\n3| """\n````' in text
    assert "## pkg/big.py\n(content not included" in text
    assert 'implement.patch:\n```diff\n-a\n+b\n```' in text and '"summary": "s"' in text
    assert '"no-migrations"' in text and '"lint": 3' in text and "/secret/wt" not in text
    assert text.rstrip().endswith('"notes": "..."}.')


# ---- the call: backoff, errors --------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now, self.waits = 0.0, []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


class FailingClient:
    def __init__(self, error: Exception):
        self.error, self.calls = error, 0

    def converse(self, **_):
        self.calls += 1
        raise self.error


def client_error(code: str, message: str = "m") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Converse")


@pytest.fixture
def failing(monkeypatch):
    def install(error: Exception) -> FailingClient:
        fake = FailingClient(error)
        monkeypatch.setattr(aws, "call_client", lambda service, read_timeout: fake)
        return fake

    return install


PAYLOAD = {"phase": "plan", "files": [], "context": {}}


def test_throttling_backs_off_exponentially_until_the_phase_timeout(failing):
    fake = failing(client_error("ThrottlingException", "Rate exceeded"))
    clock = FakeClock()
    runtime = BedrockRuntime(AGENT, sleep=clock.sleep, clock=clock.time, jitter=lambda: 1.0)
    with pytest.raises(AgentError, match=rf"^timeout: planner-agent: Bedrock still answered ThrottlingException "
                                         rf"for model {MODEL} after 8 attempts within 100s"):
        runtime.invoke(PAYLOAD, timeout=100)
    assert clock.waits == [1, 2, 4, 8, 16, 30, 30]
    assert fake.calls == 8


def test_backoff_jitter_stays_within_half_and_all_of_the_step():
    low, high = (BedrockRuntime(AGENT, jitter=lambda v=v: v) for v in (0.0, 1.0))
    assert [low.backoff(n) for n in (1, 2, 3, 7)] == [0.5, 1.0, 2.0, 15.0]
    assert [high.backoff(n) for n in (1, 2, 3, 7)] == [1.0, 2.0, 4.0, 30.0]


@pytest.mark.parametrize(("code", "hint"), [
    ("ValidationException", f"check model_id {MODEL}"),
    ("AccessDeniedException", f"bedrock:InvokeModel on {MODEL}"),
])
def test_other_errors_are_one_line_naming_the_model(failing, code, hint):
    fake = failing(client_error(code, "The provided model identifier is invalid."))
    with pytest.raises(AgentError, match=rf"^agent-error: planner-agent: Bedrock Converse with model {MODEL}: "
                                         rf"{code}: The provided") as failure:
        BedrockRuntime(AGENT, sleep=pytest.fail).invoke(PAYLOAD, timeout=30)
    assert hint in failure.value.hint
    assert fake.calls == 1


def test_a_read_timeout_is_a_timeout(failing):
    failing(ReadTimeoutError(endpoint_url="http://bedrock"))
    with pytest.raises(AgentError, match=f"^timeout: planner-agent: no answer from Bedrock model {MODEL} within 30s"):
        BedrockRuntime(AGENT).invoke(PAYLOAD, timeout=30)


def test_the_service_endpoint_wins_over_the_global_one(tdev, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:2")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    assert aws.call_client("bedrock-runtime", 30).meta.endpoint_url == "http://127.0.0.1:2"


# ---- registry, config, status ---------------------------------------------------------------

def test_registered_with_defaults_and_an_offline_status():
    runtime = agents.runtime(AGENT)
    assert isinstance(runtime, BedrockRuntime)
    assert (runtime.max_tokens, runtime.temperature, runtime.cost({"input": 10_000, "output": 10_000})) == (8192, 0, 0)
    assert runtime.status() == {"state": "available", "version": MODEL, "capacity": "on demand",
                                "errors_last_hour": None, "detail": "Bedrock Converse, no prices: cost counted as 0"}


def test_agents_yaml_requires_model_id_for_bedrock(tdev):
    tdev.write_config("agents", "agents:\n  - {name: research-agent, phase: research, runtime: local}\n"
                                "  - {name: planner-agent, phase: plan, runtime: bedrock}\n")
    with pytest.raises(ConfigError, match=r"agents\.yaml: agents\[1\]: runtime bedrock needs 'model_id'"):
        config.agents()
    with pytest.raises(ConfigError, match="runtime bedrock needs model_id"):
        BedrockRuntime({**AGENT, "model_id": ""})


def test_agents_yaml_checks_the_bedrock_fields(tdev):
    tdev.write_config("agents", f"agents:\n  - {{name: p, phase: plan, runtime: bedrock, model_id: {MODEL!r}, "
                                "max_tokens: 4096, temperature: 0.5, price_per_1k_input_usd: 0.0008, "
                                "price_per_1k_output_usd: 0.0032, prompt_file: prompts/plan.md}\n")
    assert config.agents()[0]["max_tokens"] == 4096
    tdev.write_config("agents", f"agents:\n  - {{name: p, phase: plan, runtime: bedrock, model_id: {MODEL!r}, "
                                "max_tokens: many}\n")
    with pytest.raises(ConfigError, match=r"agents\[0\]\.max_tokens: expected integer"):
        config.agents()


def test_a_missing_prompt_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=rf"planner-agent: cannot read prompt_file {tmp_path}/nope.md"):
        BedrockRuntime({**AGENT, "prompt_file": str(tmp_path / "nope.md")})
    (tmp_path / "plan.md").write_text("Plan well.\n")
    assert BedrockRuntime({**AGENT, "prompt_file": str(tmp_path / "plan.md")}).instructions == "Plan well.\n"
