"""The agent contract of DESIGN §5: the input every runtime is given and the check of every reply.

The runner reads an agent's output only through `read_reply`, so no runner code ever meets a key
that an agent did not send or sent with the wrong type: that is a `bad-output:` task failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlsplit, urlunsplit

from lib.agents.reply_bounds import BadOutput, check_nesting
from lib.log import mask_secrets

#: Runtimes that run on this machine: only they get the worktree's path and may edit it in place.
ON_THIS_MACHINE = ("local", "command")
VERDICTS = ("pass", "fail")
#: Schemes whose user name is a login, not a secret (ssh://git@host/...): it stays in the URL.
LOGIN_SCHEMES = ("ssh", "git+ssh", "ssh+git")
#: The largest count a store column holds (SQLite INTEGER): a larger token count is not a count.
MAX_COUNT = 2**63 - 1


@dataclass
class Reply:
    """What the runner takes from one agent call, checked."""

    output: dict
    cost_usd: float
    tokens_in: int
    tokens_out: int


def public_url(url: str | None) -> str | None:
    """The remote URL as agents are given it: without the credentials a URL can carry.

    `https://user:token@host/...` becomes `https://host/...` (a user name alone can be a token there);
    an ssh URL keeps its login and loses a password. Token-looking text elsewhere is masked.
    """
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        login, host = parts.netloc.rsplit("@", 1)
        user = login.split(":", 1)[0] if parts.scheme in LOGIN_SCHEMES else ""
        url = urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))
    return mask_secrets(url)


def inside(path: str, target: str) -> bool:
    """Whether a repository-relative path lies inside the target (also repository-relative)."""
    parts = PurePosixPath(path).parts
    if not parts or PurePosixPath(path).is_absolute() or ".." in parts:
        return False
    if target in ("", "."):
        return True
    target_parts = PurePosixPath(target).parts
    return parts[: len(target_parts)] == target_parts


def read_reply(phase: str, agent: dict, reply, target: str) -> Reply:
    """Check the reply document and its phase output (§5); raise BadOutput naming what is wrong."""
    name = agent["name"]
    if not isinstance(reply, dict):
        raise BadOutput(name, f"the reply must be a JSON object, got {_kind(reply)}")
    check_nesting(name, reply)
    cost = reply.get("cost_usd") or 0
    if not _amount(cost):
        raise BadOutput(name, f"cost_usd must be a finite number >= 0, got {_shown(cost)}")
    tokens_in, tokens_out = _tokens(name, reply.get("tokens"))
    output = reply.get("output")
    if not isinstance(output, dict):
        raise BadOutput(name, f"output must be an object, got {_kind(output)}")
    _CHECKS[phase](name, output, agent, target)
    return Reply(output, float(cost), tokens_in, tokens_out)


def cost_of_failed_call(reply: dict) -> tuple[float, int | None, int | None]:
    """(cost_usd, tokens in, tokens out) of a call that failed: a reply that broke the contract, or a
    model answer its runtime refused, has been paid for, and the cost limits count it. Never raises."""
    cost = reply.get("cost_usd")
    cost = float(cost) if _amount(cost) and cost > 0 else 0.0
    if reply.get("tokens") is None:
        return cost, None, None
    try:
        return (cost, *_tokens("", reply["tokens"]))
    except BadOutput:
        return cost, None, None


def _tokens(name: str, tokens) -> tuple[int, int]:
    if tokens is None:
        return 0, 0
    if _count(tokens):
        return tokens, 0
    if isinstance(tokens, dict) and all(_count(tokens.get(k)) for k in ("input", "output")):
        return tokens.get("input") or 0, tokens.get("output") or 0
    raise BadOutput(name, f"tokens must be a whole number or {{input, output}}, got {_shown(tokens)}")


def _count(value) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT)


def _amount(value) -> bool:
    """A cost: a finite number >= 0 (NaN, Infinity and 1e400 would turn the cost limits off)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value)) and value >= 0
    except OverflowError:  # an integer too large for a float
        return False


def _shown(value) -> str:
    """A value in an error line: short (an agent's number can have thousands of digits)."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else f"a {value.bit_length()}-bit integer"
    return text if len(text) <= 80 else f"{text[:77]}..."


def _kind(value) -> str:
    return "null" if value is None else type(value).__name__


def _need(name: str, output: dict, key: str, kind: type, required: bool = True) -> None:
    if key not in output or output[key] is None:
        if required:
            raise BadOutput(name, f"output.{key} is missing")
        return
    if not isinstance(output[key], kind):
        raise BadOutput(name, f"output.{key} must be a {kind.__name__}, got {_kind(output[key])}")


def _strings(name: str, output: dict, key: str, required: bool) -> None:
    _need(name, output, key, list, required)
    for item in output.get(key) or []:
        if not isinstance(item, str):
            raise BadOutput(name, f"output.{key} must hold strings, got {_kind(item)}")


def _research(name: str, output: dict, agent: dict, target: str) -> None:
    _need(name, output, "summary", str)
    _need(name, output, "findings", list, required=False)
    for finding in output.get("findings") or []:
        if not isinstance(finding, dict) or not isinstance(finding.get("path"), str) \
                or not isinstance(finding.get("message"), str):
            raise BadOutput(name, "each of output.findings needs a path and a message (strings)")


def _plan(name: str, output: dict, agent: dict, target: str) -> None:
    _strings(name, output, "files", required=True)
    _strings(name, output, "steps", required=False)
    _need(name, output, "rationale", str, required=False)
    outside = [path for path in output["files"] if not inside(path, target)]
    if outside:
        raise BadOutput(name, f"output.files must be paths inside {target}, relative to the repository: "
                              f"{', '.join(outside[:3])}")


#: The implement output forms (DESIGN §5), each a list of objects with these string keys.
EDIT_FORMS = {"edits": ("path", "search", "replace"), "files": ("path", "content")}


def _implement(name: str, output: dict, agent: dict, target: str) -> None:
    _need(name, output, "summary", str, required=False)
    if "patch" in output and output["patch"] is not None:
        _need(name, output, "patch", str)
        return
    for form, keys in EDIT_FORMS.items():
        if output.get(form) is not None:
            _entries(name, output, form, keys, target)
            return
    if agent["runtime"] in ON_THIS_MACHINE and output.get("changed_files") is not None:
        _strings(name, output, "changed_files", required=True)
        return
    raise BadOutput(name, "output.patch is missing (or output.edits, output.files" + (
        ", or output.changed_files for an agent that edited the worktree)" if agent["runtime"] in ON_THIS_MACHINE
        else ")"))


def _entries(name: str, output: dict, form: str, keys: tuple, target: str) -> None:
    """output.edits / output.files: a non-empty list of objects whose keys are strings, paths in the target."""
    _need(name, output, form, list)
    if not output[form]:
        raise BadOutput(name, f"output.{form} is empty (send an empty patch for no change)")
    for number, entry in enumerate(output[form], 1):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(key), str) for key in keys):
            raise BadOutput(name, f"output.{form}[{number}] needs {', '.join(keys)} (strings)")
        if not inside(entry["path"], target):
            raise BadOutput(name, f"output.{form}[{number}].path must be a path inside {target}, relative to the "
                                  f"repository: {entry['path']}")


def _evaluate(name: str, output: dict, agent: dict, target: str) -> None:
    _need(name, output, "verdict", str)
    if output["verdict"] not in VERDICTS:
        raise BadOutput(name, f"output.verdict must be pass or fail, got {output['verdict']!r}")
    _need(name, output, "notes", str, required=False)


_CHECKS = {"research": _research, "plan": _plan, "implement": _implement, "evaluate": _evaluate}
