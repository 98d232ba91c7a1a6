"""Prompts and replies for every model runtime (bedrock, openai): DESIGN §5, one module.

The §5 input becomes two texts: the files block (target, focus, every file's content with line
numbers) and the phase message (map, baseline tests, feedback of refused attempts, history,
patterns, gates, metrics, the earlier phases' outputs). The files block comes first and is the same
for every phase that gets the same files, so a provider's prompt cache can serve it to the later
phases of a cycle (Bedrock: a cachePoint after it; OpenAI-compatible servers: a common prefix).
The reply is read back from its last fenced block: ```diff or ```json with edits/files for
implement, ```json for research, plan and evaluate.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from lib import paths
from lib.agents import AgentError
from lib.errors import ConfigError
from lib.log import mask_secrets, masked

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
SUMMARY_CHARS = 500
#: A prompt's input tokens are estimated as its UTF-8 bytes over this: code runs 3-4 bytes a token,
#: so 3 errs on the side of reserving too much (DESIGN §5 Budget).
BYTES_PER_TOKEN_ESTIMATE = 3
#: What the model is reminded of at the end of the phase message, so a custom prompt_file keeps the contract.
REMINDERS = {
    "research": 'End your answer with one fenced ```json block: {"summary": "...", "findings": [...]}.',
    "plan": 'End your answer with one fenced ```json block: {"files": ["<path>", ...], "steps": [...], '
            '"rationale": "..."}.',
    "implement": "End your answer with one fenced ```diff block holding the whole change as a unified diff "
                 "(git diff format, paths relative to the repository root); an empty block means no change. "
                 'Instead of a diff you may end with one fenced ```json block: {"edits": [{"path", "search", '
                 '"replace"}]} or {"files": [{"path", "content"}]}.',
    "evaluate": 'End your answer with one fenced ```json block: {"verdict": "pass" or "fail", "notes": "..."}.',
}
LINE_NUMBER_NOTE = ("Each line is shown as `<number>| <text>`: the number, the bar and one space are not part "
                    "of the file; never copy them into a diff or an edit.")


@dataclass(frozen=True)
class Prompt:
    """What a model runtime sends: the phase's instructions, the files block (cacheable), the phase message."""

    instructions: str
    files: str
    message: str

    def size(self) -> int:
        return sum(len(part.encode("utf-8")) for part in (self.instructions, self.files, self.message))

    def estimated_tokens(self) -> int:
        return -(-self.size() // BYTES_PER_TOKEN_ESTIMATE)


def read_instructions(agent: dict) -> str:
    """The phase's built-in prompt, or the agent's prompt_file (relative to the project root, or absolute)."""
    configured = agent.get("prompt_file")
    path = paths.root() / Path(configured).expanduser() if configured else PROMPTS_DIR / f"{agent['phase']}.md"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as failure:
        reason = getattr(failure, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"agent {agent['name']}: cannot read prompt_file {path}: {reason}",
                          "prompt_file is relative to the project root, or absolute") from None
    if not text.strip():
        raise ConfigError(f"agent {agent['name']}: prompt_file {path} is empty", "write the phase's prompt in it")
    return text


def build(instructions: str, payload: dict) -> Prompt:
    return Prompt(instructions, render_files(payload), render_message(payload))


# ---- the input ------------------------------------------------------------------------------

def _fenced(text: str, language: str = "") -> str:
    """text in a fence longer than any run of backticks inside it, so the text cannot close it early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    newline = "" if text.endswith("\n") else "\n"
    return f"{fence}{language}\n{text}{newline}{fence}"


def _json(value) -> str:
    return _fenced(json.dumps(value, indent=1, default=str, ensure_ascii=False), "json")


def numbered(content: str) -> str:
    """content with 1-based line numbers, right-aligned to the widest."""
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    width = len(str(len(lines)))
    return "".join(f"{number:>{width}}| {line}\n" for number, line in enumerate(lines, 1))


def render_files(payload: dict) -> str:
    """The files block: the same text for every phase given the same files (the cacheable prefix).
    The worktree path is left out: a model cannot reach this machine."""
    files = payload.get("files") or []
    parts = [f"target: {payload.get('target')}  (relative to the repository root)",
             f"focus: {payload.get('focus')}",
             f"\n# Files ({len(files)}; paths relative to the repository root)", LINE_NUMBER_NOTE]
    for item in files:
        path, content = item.get("path", ""), item.get("content")
        parts.append(f"\n## {path}")
        if item.get("symlink"):
            parts.append("(a symlink: not followed; do not change it)")
        elif content is None:
            parts.append("(content not included: over the context budget; do not change this file)")
        else:
            parts.append(_fenced(numbered(content), "python" if path.endswith(".py") else ""))
    return "\n".join(parts) + "\n"


def _map_section(entries: list) -> list[str]:
    parts = ["\n# Map of the other target files (contents not included: do not change them)"]
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        parts.append(f"\n## {entry.get('path')} ({entry.get('lines', '?')} lines)")
        for symbol in entry.get("symbols") or []:
            parts.append(f"- {symbol if isinstance(symbol, str) else json.dumps(symbol, default=str)}")
    return parts


def _tests_section(tests: dict) -> list[str]:
    baseline = tests.get("baseline") or {}
    parts = ["\n# Tests", f"command: {tests.get('command')}",
             f"baseline on the base commit: {baseline.get('passed', '?')} passed, {baseline.get('failed', '?')} failed"]
    failing = baseline.get("failing") or []
    if failing:
        parts.append("already failing on the base (not blamed on you): " + ", ".join(map(str, failing)))
    return parts


def _feedback_section(feedback: list) -> list[str]:
    parts = ["\n# Your earlier attempts in this cycle were refused: do better this time"]
    for entry in feedback:
        if not isinstance(entry, dict):
            continue
        candidate = f", candidate {entry['candidate']}" if entry.get("candidate") else ""
        parts.append(f"\n## attempt {entry.get('attempt')}{candidate}: {entry.get('error')}")
        tests = entry.get("tests") or {}
        if tests:
            parts.append(f"tests exit code {tests.get('exit_code')}; failed: "
                         f"{', '.join(map(str, tests.get('failed') or [])) or 'none'}")
            if tests.get("output_tail"):
                parts.append(f"test output (tail):\n{_fenced(str(tests['output_tail']))}")
        for gate in entry.get("gates") or []:
            parts.append(f"gate {gate.get('name')}: {gate.get('before')} -> {gate.get('after')} ({gate.get('rule')})")
        if entry.get("patch"):
            parts.append(f"the refused patch:\n{_fenced(str(entry['patch']), 'diff')}")
    return parts


def _history_section(history: list) -> list[str]:
    parts = ["\n# Earlier cycles of this evolution"]
    for entry in history:
        if isinstance(entry, dict):
            files = ", ".join(map(str, entry.get("files") or [])) or "no files"
            summary = entry.get("summary") or ""
            parts.append(f"- cycle {entry.get('cycle')}: {entry.get('outcome')} ({files}): {summary}")
    return parts


def render_message(payload: dict) -> str:
    """The phase message: everything but the files. Sections whose keys are absent or empty are left out;
    multi-line strings of earlier phases (the patch that evaluate reviews) are shown as text, not JSON."""
    phase = payload.get("phase", "")
    attempt = payload.get("attempt")
    candidate = payload.get("candidate")
    parts = [f"# Phase: {phase} (cycle {payload.get('cycle', 1)}"
             + (f", attempt {attempt}" if isinstance(attempt, int) and attempt > 1 else "")
             + (f", candidate {candidate} of {payload.get('candidates')}: one of several changes asked for at once, "
                "the best passing one is kept" if isinstance(candidate, int) else "") + ")"]
    if payload.get("map"):
        parts += _map_section(payload["map"])
    if isinstance(payload.get("tests"), dict):
        parts += _tests_section(payload["tests"])
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
    if payload.get("feedback"):
        parts += _feedback_section(payload["feedback"])
    if payload.get("history"):
        parts += _history_section(payload["history"])
    parts.append(f"\n# Your answer\n{REMINDERS.get(phase, '')}")
    return "\n".join(parts) + "\n"


def render_input(payload: dict) -> str:
    """The whole input as one text (files block, then the phase message)."""
    return f"{render_files(payload)}\n{render_message(payload)}"


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


def _block_spans(lines: list[str], languages: tuple[str, ...]) -> tuple[tuple[str, int, int] | None, str | None]:
    """(language, first, end) of the last closed block in one of languages, and the language of a block left open.

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
            if opened[2] in languages:
                found = (opened[2], opened[3], index)
            opened = None
    return found, opened[2] if opened is not None and opened[2] in languages else None


def _stopped(stop_reason: str | None) -> str:
    if stop_reason in ("max_tokens", "length"):
        return " (the reply was cut at max_tokens: raise max_tokens in the agent's registry entry)"
    if stop_reason in (None, "", "end_turn", "stop_sequence", "stop"):
        return ""
    return f" (the model stopped: {stop_reason})"


def _opening(text: str) -> str:
    start = " ".join(text[:400].split())
    return f"; the reply starts {mask_secrets(start)[:100]!r}" if start else "; the reply is empty"


def _summary_outside(lines: list[str], first: int, end: int) -> str:
    outside = mask_secrets(" ".join(" ".join(lines[:first - 1] + lines[end + 1:]).split())[:2 * SUMMARY_CHARS])
    return outside if len(outside) <= SUMMARY_CHARS else f"{outside[:SUMMARY_CHARS - 1]}…"


def parse_reply(phase: str, text: str, who: str, stop_reason: str | None = None) -> dict:
    """The phase's output from the model's reply; AgentError bad-output when the block is missing or broken.

    Bounded work on any reply: one pass over its lines, no regular expression that can backtrack.
    What is stored is masked (a research finding may quote a credential), except the change:
    that is code, and the runner applies it exactly as written.
    """
    languages = ("diff", "json") if phase == "implement" else ("json",)
    wanted = "```diff or ```json" if phase == "implement" else "```json"
    lines = text.split("\n")
    span, left_open = _block_spans(lines, languages)
    if left_open or span is None:
        what = f"the last ```{left_open} block is not closed" if left_open else f"no fenced {wanted} block"
        raise AgentError(f"bad-output: {who}: {what}{_stopped(stop_reason)}{_opening(text)}",
                         f"the model must end its answer with a fenced {wanted} block "
                         f"(lib/agents/prompts/{phase}.md or the agent's prompt_file)")
    language, first, end = span
    body = "\n".join(lines[first:end])
    if language == "diff":
        return {"patch": f"{body}\n" if body.strip() else "", "summary": _summary_outside(lines, first, end)}
    try:
        document = json.loads(body)
    except json.JSONDecodeError as bad:
        raise AgentError(f"bad-output: {who}: the last ```json block is not valid JSON "
                         f"({bad.msg} at line {bad.lineno}){_stopped(stop_reason)}") from None
    except RecursionError:
        raise AgentError(f"bad-output: {who}: the last ```json block is nested too deeply") from None
    if not isinstance(document, dict):
        raise AgentError(f"bad-output: {who}: the last ```json block is a {type(document).__name__}, "
                         "not an object")
    if phase != "implement":
        return masked(document)
    if "edits" not in document and "files" not in document:
        raise AgentError(f"bad-output: {who}: the last ```json block holds neither edits nor files",
                         'end with a ```diff block, or a ```json block {"edits": [...]} or {"files": [...]}')
    document.setdefault("summary", _summary_outside(lines, first, end))
    return document
