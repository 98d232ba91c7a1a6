"""Error classes that map an expected failure to one `error:` line and an exit code (DESIGN §6, §8)."""

from __future__ import annotations


class ToolError(Exception):
    """An expected failure: printed as one line with a hint, never as a traceback."""

    exit_code = 1  # ordinary commands
    check_exit_code = 3  # check commands: UNKNOWN

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class UsageError(ToolError):
    """A malformed value on the command line (bad date, negative count)."""

    exit_code = 2


class NotFound(ToolError):
    """A well-formed value that names nothing (unknown evolution, task, agent, PR)."""


class ConfigError(ToolError):
    """A config file that is missing, not YAML, or not of the expected shape."""


class Conflict(ToolError):
    """The operation collides with live state (a second evolution on one target, a held lock)."""


class ExternalError(ToolError):
    """A dependency (AWS, GitHub, git, an MCP server) answered with an error or not at all."""
