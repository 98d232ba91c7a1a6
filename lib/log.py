"""Logging for every script: LOG_LEVEL and DEBUG decide, diagnostics go to stderr."""

from __future__ import annotations

import logging
import os
import re
import sys
from datetime import datetime

# (pattern, keep the first group): the first group is a label to keep, the rest is the secret.
_SECRET_PATTERNS = [
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b"), False),
    (re.compile(r"(?i)(--[\w-]*(?:token|secret|password|key)[= ])\S+"), True),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), False),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), True),
    (
        re.compile(
            r"(?i)((?:token|secret|password|passwd|api[_-]?key|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"',]+"
        ),
        True,
    ),
]


def mask_secrets(text: str) -> str:
    """Replace anything that looks like a credential, so no log or audit line carries one."""
    for pattern, keep_label in _SECRET_PATTERNS:
        text = pattern.sub((lambda m: m.group(1) + "***") if keep_label else "***", text)
    return text


def masked(value):
    """Secrets masked in every string of a JSON-like value."""
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return value


class _MaskingFormatter(logging.Formatter):
    """ISO local time with its offset first (cron logs are read days later, from several hosts), secrets masked."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        return datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="seconds")

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


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
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
