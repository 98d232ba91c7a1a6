"""Logging for every script: LOG_LEVEL and DEBUG decide, diagnostics go to stderr."""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from datetime import datetime

_SECRET_WORD = re.compile(r"(?i)secret|credential")
_BASE64_ONLY = re.compile(r"[A-Z/+]")
#: How far before and after a 40-character run the word "secret" or "credential" makes it a key.
_KEY_WORD_BEFORE, _KEY_WORD_AFTER = 70, 30


def _bare_aws_secret(match: re.Match) -> str:
    """A 40-character base64 run standing alone is an AWS secret access key when it holds a capital, / or +
    (a git sha or a hex digest does not) and its line names a secret or a credential just before or after."""
    key, text = match.group(0), match.string
    if not _BASE64_ONLY.search(key):
        return key
    before = text[max(0, match.start() - _KEY_WORD_BEFORE):match.start()].rsplit("\n", 1)[-1]
    after = text[match.end():match.end() + _KEY_WORD_AFTER].split("\n", 1)[0]
    return "***" if _SECRET_WORD.search(before) or _SECRET_WORD.search(after) else key


# (pattern, replacement). The URL rules come first: they keep scheme and host, which the
# key=value rule would swallow; a quoted value keeps its quotes, so masked JSON stays JSON. An ssh
# URL keeps its login (git@host is no secret, and an agent needs it to clone) and loses a password;
# every other URL loses its whole userinfo (a token may stand where a user name does).
_SECRET_PATTERNS = [
    (re.compile(r"(?i)\b((?:ssh|git\+ssh)://[^\s/?#@:]+):[^\s/?#@]+(?=@)"), r"\1:***"),
    (re.compile(r"(?i)\b((?!(?:ssh|git\+ssh)://)[a-z][a-z0-9+.-]*://)[^\s/?#@]+(?=@)"), r"\1***"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"), "***"),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abposr]-[A-Za-z0-9-]{10,})\b"),
     "***"),
    (re.compile(r"(?i)(--[\w-]*(?:token|secret|password|key)[= ])\S+"), r"\1***"),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), "***"),
    (re.compile(r"(?i)\b((?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1***"),
    (
        re.compile(
            r"(?i)((?:token|secret|password|passwd|api[_-]?key|access[_-]?key|private[_-]?key|authorization)"
            r"(?:[_-][\w-]*)?[\"']?\s*[:=]\s*)([\"'])?(?(2)[^\"'\n]*[\"']|[^\s\"',]+)"
        ),
        r"\1\2***\2",
    ),
    # A bare AWS secret access key (issue 16): see _bare_aws_secret.
    (re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"), _bare_aws_secret),
]


def mask_secrets(text: str) -> str:
    """Replace anything that looks like a credential, so no log or audit line carries one.

    Mask before cutting a text short: a token cut in half no longer looks like one.
    """
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def masked(value):
    """Secrets masked in every string of a JSON-like value."""
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [masked(item) for item in value]
    return value


class _MaskingFormatter(logging.Formatter):
    """ISO local time with its offset first (cron logs are read days later, from several hosts), secrets masked."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        return datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="seconds")

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


def print_exception(error: BaseException) -> None:
    """The traceback DEBUG=true asks for, on stderr, with secrets masked like every other line."""
    import traceback

    sys.stderr.write(mask_secrets("".join(traceback.format_exception(error))))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is not SystemExit:
        name = args.thread.name if args.thread else "a thread"
        sys.stderr.write(f"Exception in {name}:\n")
        print_exception(args.exc_value)


class _CurrentStderr(logging.StreamHandler):
    """Writes to sys.stderr as it is at each record (a test's capture, a redirected stream), not at import."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


_notes = logging.getLogger("tdev.notes")
_notes.propagate = False  # LOG_LEVEL quiets diagnostics, not what the operator is told
_notes.setLevel(logging.INFO)
_notes_handler = _CurrentStderr()
_notes_handler.setFormatter(logging.Formatter("note: %(message)s"))
_notes.addHandler(_notes_handler)


def note(text: str) -> None:
    """One "note: ..." line on stderr from a floor that may not print (DESIGN §1): the store's "no evolution
    history yet" and "locked, waiting" notes."""
    _notes.info(mask_secrets(text))


def debug_enabled() -> bool:
    return os.environ.get("DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def setup() -> None:
    level_name = "DEBUG" if debug_enabled() else os.environ.get("LOG_LEVEL", "WARNING").upper()
    level = getattr(logging, level_name, logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    sys.excepthook = lambda _kind, error, _traceback: print_exception(error)
    threading.excepthook = _thread_excepthook
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
