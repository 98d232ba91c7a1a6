"""The bedrock runtime: the built-in model agent on the Bedrock Runtime Converse API (DESIGN §5).

The phase's prompt (lib/agents/prompts/<phase>.md, or the agent's prompt_file) is the system
prompt; the phase input with the files' contents is the user message. The output is the
reply's last fenced ```diff block (implement) or ```json block (research, plan, evaluate).
The SDK never retries the call (a model call that timed out must not be paid twice); this
runtime retries throttling itself, with backoff, inside the phase timeout.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import time
from collections.abc import Callable
from pathlib import Path

from lib import paths
from lib.adapters import aws
from lib.agents import AgentError, Runtime
from lib.errors import ConfigError
from lib.log import mask_secrets, masked

log = logging.getLogger(__name__)

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
DEFAULT_MAX_TOKENS = 8192
DEFAULT_TEMPERATURE = 0.0
#: Bedrock's answers while the model is busy or warming up: worth waiting for within the phase timeout.
RETRYABLE_CODES = frozenset({"ThrottlingException", "ServiceUnavailableException", "ModelNotReadyException"})
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 30.0
SUMMARY_CHARS = 500
#: What the model is reminded of at the end of the user message, so a custom prompt_file keeps the contract.
REMINDERS = {
    "research": 'End your answer with one fenced ```json block: {"summary": "...", "findings": [...]}.',
    "plan": 'End your answer with one fenced ```json block: {"files": ["<path>", ...], "steps": [...], '
            '"rationale": "..."}.',
    "implement": "End your answer with one fenced ```diff block holding the whole change as a unified diff "
                 "(git diff format, paths relative to the repository root); an empty block means no change.",
    "evaluate": 'End your answer with one fenced ```json block: {"verdict": "pass" or "fail", "notes": "..."}.',
}
_HINTS = {
    "AccessDeniedException": "the identity needs bedrock:InvokeModel on {model}, and access to the model must be "
                             "enabled in the Bedrock console of {region}",
    "ValidationException": "check model_id {model} and max_tokens in config/agents.yaml (the model must offer "
                           "Converse in {region})",
    "ResourceNotFoundException": "model {model} is not offered in {region}: check model_id in config/agents.yaml",
}


# ---- the reply ------------------------------------------------------------------------------

def _fence(line: str) -> tuple[int, int, str] | None:
    """(indent, backticks, language) when the line is a code fence; plain string work, linear in the line."""
    indent = len(line) - len(line.lstrip(" "))
    if indent > 3 or not line.startswith("```", indent):
        return None
    rest = line[indent:].rstrip()
    ticks = len(rest) - len(rest.lstrip("`"))
    info = rest[ticks:].strip()
    if "`" in info:
        return None
    return indent, ticks, info.split()[0].lower() if info else ""


def _block_span(lines: list[str], language: str) -> tuple[tuple[int, int] | None, bool]:
    """(first, end) line indexes of the last closed block in language, and whether one is left open.

    A block closes only at a bare fence with no more indentation and at least as many backticks
    as its opening, so a diff's context line " ```" stays inside the block.
    """
    found, opened = None, None
    for index, line in enumerate(lines):
        fence = _fence(line)
        if fence is None:
            continue
        if opened is None:
            opened = (*fence, index + 1)
        elif not fence[2] and fence[0] <= opened[0] and fence[1] >= opened[1]:
            if opened[2] == language:
                found = (opened[3], index)
            opened = None
    return found, opened is not None and opened[2] == language


def _stopped(stop_reason: str | None) -> str:
    if stop_reason == "max_tokens":
        return " (the reply was cut at max_tokens: raise max_tokens in config/agents.yaml)"
    if stop_reason in (None, "", "end_turn", "stop_sequence"):
        return ""
    return f" (the model stopped: {stop_reason})"


def _opening(text: str) -> str:
    start = " ".join(text[:400].split())
    return f"; the reply starts {mask_secrets(start)[:100]!r}" if start else "; the reply is empty"


def parse_reply(phase: str, text: str, who: str, stop_reason: str | None = None) -> dict:
    """The phase's output from the model's reply; AgentError bad-output when the block is missing or broken.

    Bounded work on any reply: one pass over its lines, no regular expression that can backtrack.
    What is stored is masked (a research finding may quote a credential), except the patch:
    that is code, and the runner applies it exactly as written.
    """
    language = "diff" if phase == "implement" else "json"
    lines = text.split("\n")
    span, left_open = _block_span(lines, language)
    if left_open or span is None:
        what = f"the last ```{language} block is not closed" if left_open else f"no fenced ```{language} block"
        raise AgentError(f"bad-output: {who}: {what}{_stopped(stop_reason)}{_opening(text)}",
                         f"the model must end its answer with a fenced ```{language} block "
                         f"(lib/agents/prompts/{phase}.md or the agent's prompt_file)")
    first, end = span
    body = "\n".join(lines[first:end])
    if language == "diff":
        outside = mask_secrets(" ".join(" ".join(lines[:first - 1] + lines[end + 1:]).split())[:2 * SUMMARY_CHARS])
        summary = outside if len(outside) <= SUMMARY_CHARS else f"{outside[:SUMMARY_CHARS - 1]}…"
        return {"patch": f"{body}\n" if body.strip() else "", "summary": summary}
    try:
        document = masked(json.loads(body))
    except json.JSONDecodeError as bad:
        raise AgentError(f"bad-output: {who}: the last ```json block is not valid JSON "
                         f"({bad.msg} at line {bad.lineno}){_stopped(stop_reason)}") from None
    except RecursionError:
        raise AgentError(f"bad-output: {who}: the last ```json block is nested too deeply") from None
    if not isinstance(document, dict):
        raise AgentError(f"bad-output: {who}: the last ```json block is a {type(document).__name__}, "
                         "not an object")
    return document


# ---- the request ----------------------------------------------------------------------------

def _fenced(text: str, language: str = "") -> str:
    """text in a fence longer than any run of backticks inside it, so the text cannot close it early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    newline = "" if text.endswith("\n") else "\n"
    return f"{fence}{language}\n{text}{newline}{fence}"


def _json(value) -> str:
    return _fenced(json.dumps(value, indent=1, default=str, ensure_ascii=False), "json")


def render_input(payload: dict) -> str:
    """The phase input as the user message: short sections, each file's content in its own fence.

    Code stays readable (a model copies context lines into its diff); multi-line strings of
    earlier phases (the implement patch that evaluate reviews) are shown as text, not JSON.
    The worktree path is left out: a model cannot reach this machine.
    """
    phase = payload.get("phase", "")
    parts = [f"# Phase: {phase} (cycle {payload.get('cycle', 1)})",
             f"target: {payload.get('target')}  (relative to the repository root)",
             f"focus: {payload.get('focus')}"]
    files = payload.get("files") or []
    parts.append(f"\n# Files ({len(files)}; paths relative to the repository root)")
    for item in files:
        path, content = item.get("path", ""), item.get("content")
        parts.append(f"\n## {path}")
        parts.append(_fenced(content, "python" if path.endswith(".py") else "") if content is not None else
                     "(content not included: over the context budget; do not change this file)")
    for title, key in (("Prevention and failure patterns that match the target", "patterns"),
                       ("Quality gates (config/gates.yaml)", "gates"),
                       ("Metrics measured before this cycle", "metrics")):
        parts.append(f"\n# {title}\n{_json(payload.get(key))}")
    context = payload.get("context") or {}
    parts.append("\n# Outputs of the earlier phases of this cycle" + ("" if context else "\n(none yet)"))
    for key, value in context.items():
        texts = {}
        if isinstance(value, dict):
            texts = {k: v for k, v in value.items() if isinstance(v, str) and "\n" in v}
            value = {k: v for k, v in value.items() if k not in texts}
        parts.append(f"\n## {key}\n{_json(value)}")
        for name, text in texts.items():
            parts.append(f"{key}.{name}:\n{_fenced(text, 'diff' if name == 'patch' else '')}")
    parts.append(f"\n# Your answer\n{REMINDERS.get(phase, '')}")
    return "\n".join(parts) + "\n"


# ---- the runtime ----------------------------------------------------------------------------

class BedrockRuntime(Runtime):
    """One Converse call per phase; sleep, clock and jitter are injectable so tests never wait."""

    def __init__(self, agent: dict, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, jitter: Callable[[], float] = random.random):
        super().__init__(agent)
        if not agent.get("model_id"):
            raise ConfigError(f"agent {self.name}: runtime bedrock needs model_id",
                              "add model_id: <Bedrock model id> to the agent in config/agents.yaml")
        self.model_id = agent["model_id"]
        self.phase = agent["phase"]
        self.max_tokens = int(agent.get("max_tokens", DEFAULT_MAX_TOKENS))
        self.temperature = float(agent.get("temperature", DEFAULT_TEMPERATURE))
        self.price_in = float(agent.get("price_per_1k_input_usd") or 0)
        self.price_out = float(agent.get("price_per_1k_output_usd") or 0)
        self.prompt = self._read_prompt()
        self.sleep, self.clock, self.jitter = sleep, clock, jitter

    def _read_prompt(self) -> str:
        configured = self.agent.get("prompt_file")
        path = paths.root() / Path(configured).expanduser() if configured else PROMPTS_DIR / f"{self.phase}.md"
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as failure:
            reason = getattr(failure, "strerror", None) or "not UTF-8 text"
            raise ConfigError(f"agent {self.name}: cannot read prompt_file {path}: {reason}",
                              "prompt_file is relative to the project root, or absolute") from None
        if not text.strip():
            raise ConfigError(f"agent {self.name}: prompt_file {path} is empty", "write the phase's prompt in it")
        return text

    def cost(self, tokens: dict) -> float:
        return tokens["input"] / 1000 * self.price_in + tokens["output"] / 1000 * self.price_out

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with equal jitter: attempt n waits between half and all of base x 2^(n-1)."""
        ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
        return ceiling / 2 + self.jitter() * ceiling / 2

    def invoke(self, payload: dict, timeout: float) -> dict:
        user = render_input(payload)
        log.debug("%s: Converse on %s: system prompt %d chars, input %d chars", self.name, self.model_id,
                  len(self.prompt), len(user))
        answer = self._converse({
            "modelId": self.model_id,
            "system": [{"text": self.prompt}],
            "messages": [{"role": "user", "content": [{"text": user}]}],
            "inferenceConfig": {"maxTokens": self.max_tokens, "temperature": self.temperature},
        }, timeout)
        usage = answer.get("usage") or {}
        tokens = {"input": int(usage.get("inputTokens") or 0), "output": int(usage.get("outputTokens") or 0)}
        cost = self.cost(tokens)
        content = ((answer.get("output") or {}).get("message") or {}).get("content") or []
        text = "\n".join(block["text"] for block in content if isinstance(block.get("text"), str))
        stop_reason = answer.get("stopReason")
        log.info("%s: %s answered %d chars (%d input, %d output tokens, stop %s, $%.4f)", self.name,
                 self.model_id, len(text), tokens["input"], tokens["output"], stop_reason, cost)
        try:
            output = parse_reply(self.phase, text, self.name, stop_reason)
        except AgentError as failure:
            failure.cost_usd, failure.tokens = cost, tokens
            raise
        return {"status": "ok", "output": output, "cost_usd": cost, "tokens": tokens, "error": None}

    def _converse(self, request: dict, timeout: float) -> dict:
        """Converse, retrying throttling until the next wait would pass the phase's deadline."""
        from botocore.exceptions import ClientError, ReadTimeoutError

        deadline = self.clock() + timeout
        attempt = 0
        while True:
            read_timeout = max(1, math.ceil(deadline - self.clock()))
            try:
                return aws.call_client("bedrock-runtime", read_timeout).converse(**request)
            except ReadTimeoutError:
                raise AgentError(f"timeout: {self.name}: no answer from Bedrock model {self.model_id} "
                                 f"within {timeout:g}s") from None
            except ClientError as error:
                code = aws.error_code(error)
                if code not in RETRYABLE_CODES:
                    raise self._failure(error) from None
                attempt += 1
                delay = self.backoff(attempt)
                if self.clock() + delay >= deadline:
                    raise AgentError(f"timeout: {self.name}: Bedrock still answered {code} for model "
                                     f"{self.model_id} after {attempt} attempts within {timeout:g}s",
                                     "ask for a higher Bedrock quota for the model, or raise timeout_seconds "
                                     "of the agent") from None
                log.warning("%s: Bedrock answered %s; attempt %d again in %.1fs", self.name, code, attempt + 1,
                            delay)
                self.sleep(delay)
            except Exception as error:  # noqa: BLE001 - botocore errors become one line, others propagate
                failure = self._failure(error)
                if failure is None:
                    raise
                raise failure from None

    def _failure(self, error: Exception) -> AgentError | None:
        """A botocore error as one agent-error line naming the model; None for any other exception."""
        translated = aws.translate(error, f"{self.name}: Bedrock Converse with model {self.model_id}")
        if translated is error:
            return None
        hint = _HINTS.get(aws.error_code(error))
        return AgentError(f"agent-error: {mask_secrets(translated.message)}",
                          hint.format(model=self.model_id, region=aws.region()) if hint else translated.hint)

    def status(self) -> dict:
        priced = self.price_in or self.price_out
        return {"state": "available", "version": self.model_id, "capacity": "on demand", "errors_last_hour": None,
                "detail": "Bedrock Converse" if priced else "Bedrock Converse, no prices: cost counted as 0"}
