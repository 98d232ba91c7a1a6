"""The MCP client config (packages/mcp/clients/claude.mcp.json, or TDEV_MCP_CONFIG).

Claude-style: {"mcpServers": {name: {command, args, env, cwd} | {type: "http", url, headers}}}.
Strings may use ${VAR} and ${VAR:-default}; a variable that is unset and has no default
makes that one server fail with a clear reason, not the whole file. Unknown keys are
tolerated (other clients add their own). An http server may also have a `command`:
restart_mcp.py starts and stops it as a long-running process.
"""

from __future__ import annotations

import json
import json.scanner
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from lib import paths
from lib.config import DuplicateKey
from lib.errors import ConfigError, NotFound
from lib.fsutil import atomic_write
from lib.timeparse import utcnow

log = logging.getLogger(__name__)

HTTP_TYPES = ("http", "streamable-http", "streamableHttp")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# npm's filesystem server, pinned so that every machine runs the same code; npx caches it.
FILESYSTEM_PACKAGE = "@modelcontextprotocol/server-filesystem@2026.8.31"
# PyPI's git server, pinned the same way; uvx or pipx runs it in an environment of its own.
GIT_PACKAGE, GIT_VERSION = "mcp-server-git", "2026.10.19"
INSTALL_UV = ("no uvx or pipx on PATH for the git MCP server: install uv "
              "(curl -LsSf https://astral.sh/uv/install.sh | sh, or pipx install uv), "
              "then python scripts/init_evolution.py --reset-mcp")


@dataclass
class ServerSpec:
    """One configured server with its variables expanded; `problem` says why it cannot start."""

    name: str
    transport: str  # stdio | http
    command: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: dict = field(default_factory=dict)
    problem: str | None = None

    @property
    def argv(self) -> list[str]:
        return [self.command, *self.args] if self.command else []

    def working_dir(self) -> Path:
        """The config's cwd, else the user's home: never the project root (the mcp/ shim lives there)."""
        return Path(self.cwd).expanduser() if self.cwd else Path.home()


class _Unset(Exception):
    def __init__(self, variable: str):
        super().__init__(variable)
        self.variable = variable


def expand(text: str, environ: dict | None = None) -> str:
    """${VAR} and ${VAR:-default} (the default also when VAR is empty, as in the shell)."""
    environ = os.environ if environ is None else environ

    def substitute(match: re.Match) -> str:
        value = environ.get(match.group(1))
        if value:
            return value
        if match.group(2) is not None:
            return match.group(2)
        if value is not None:
            return value
        raise _Unset(match.group(1))

    return _VARIABLE.sub(substitute, text)


def _strings(value, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str | int | float) for item in value):
        raise ValueError(f"{what} must be a list of strings")
    return [str(item) for item in value]


def _mapping(value, what: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a mapping of names to strings")
    return {str(key): str(item) for key, item in value.items()}


def _command(entry: dict, environ: dict | None) -> str | None:
    command = entry.get("command")
    if command is None:
        return None
    if not isinstance(command, str) or not command.strip():
        raise ValueError("command must be a non-empty string")
    return expand(command, environ)


def _fill(spec: ServerSpec, entry: dict, environ: dict | None) -> None:
    """Expand and check the fields of one entry into spec; raises ValueError or _Unset."""
    if spec.transport not in ("stdio", "http"):
        raise ValueError(f"transport {entry.get('type')!r} is not supported (use stdio or http)")
    spec.command = _command(entry, environ)
    spec.args = [expand(arg, environ) for arg in _strings(entry.get("args", []), "args")]
    spec.env = {key: expand(value, environ) for key, value in _mapping(entry.get("env", {}), "env").items()}
    spec.cwd = expand(str(entry["cwd"]), environ) if entry.get("cwd") else None
    if spec.transport == "stdio":
        if not spec.command:
            raise ValueError("a stdio server needs a command")
        return
    if not isinstance(entry.get("url"), str):
        raise ValueError("an http server needs a url")
    spec.url = expand(entry["url"], environ)
    spec.headers = {key: expand(value, environ) for key, value in _mapping(entry.get("headers", {}), "headers").items()}


def parse_server(name: str, entry, environ: dict | None = None) -> ServerSpec:
    """One mcpServers entry as a ServerSpec; problems are recorded on it, never raised."""
    if not isinstance(entry, dict):
        return ServerSpec(name, "stdio", problem=f"entry must be an object, got {type(entry).__name__}")
    kind = str(entry.get("type") or ("http" if entry.get("url") else "stdio"))
    spec = ServerSpec(name, "http" if kind in HTTP_TYPES else kind, raw=entry)
    try:
        _fill(spec, entry, environ)
    except _Unset as unset:
        spec.problem = f"environment variable {unset.variable} is not set (the config uses ${{{unset.variable}}})"
    except ValueError as bad:
        spec.problem = str(bad)
    return spec


def _key_lines(text: str, pos: int, scan_once, wanted: str) -> list[int]:
    """The lines on which one JSON object (its members start at pos) names the key wanted."""
    skip = json.decoder.WHITESPACE.match
    lines = []
    while (pos := skip(text, pos).end()) < len(text) and text[pos] == '"':
        key, pos = json.decoder.scanstring(text, pos + 1)
        if key == wanted:
            lines.append(text.count("\n", 0, pos) + 1)
        pos = skip(text, skip(text, pos).end() + 1).end()  # past the colon
        _, pos = scan_once(text, pos)
        pos = skip(text, pos).end()
        if text[pos:pos + 1] != ",":
            break
        pos += 1
    return lines


def _object_without_duplicates(s_and_end, strict, scan_once, object_hook, object_pairs_hook, memo=None):
    """json's object parser, but a key named twice in one object is refused (json keeps the last)."""
    text, start = s_and_end
    pairs, end = json.decoder.JSONObject(s_and_end, strict, scan_once, object_hook, list, memo)
    names = [name for name, _ in pairs]
    twice = next((name for name in names if names.count(name) > 1), None)
    if twice is not None:
        raise DuplicateKey(twice, *_key_lines(text, start, scan_once, twice)[:2])
    return dict(pairs), end


def _loads_strict(text: str):
    """json.loads that refuses duplicated keys (the pure-Python scanner: the C one cannot be hooked)."""
    decoder = json.JSONDecoder()
    decoder.parse_object = _object_without_duplicates
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    return decoder.decode(text)


def read_raw(path: Path | None = None) -> dict:
    """The config file as JSON; ConfigError when it is missing or not a JSON object with mcpServers."""
    path = path or paths.mcp_config()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing", "run python scripts/init_evolution.py --reset-mcp") from None
    except OSError as failure:
        raise ConfigError(f"{path}: cannot read: {failure.strerror}") from None
    try:
        document = _loads_strict(text)
    except DuplicateKey as twice:
        raise ConfigError(f"{path}: {twice}", "keep one of them and run again") from None
    except ValueError as bad:
        raise ConfigError(f"{path}: not valid JSON: {bad}", "fix it or run python scripts/init_evolution.py "
                          "--reset-mcp") from None
    servers = document.get("mcpServers") if isinstance(document, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError(f"{path}: expected an object with an mcpServers mapping", "see the default: "
                          "python scripts/init_evolution.py --reset-mcp")
    return document


def load(path: Path | None = None) -> list[ServerSpec]:
    """Every configured server, in file order."""
    return [parse_server(name, entry) for name, entry in read_raw(path)["mcpServers"].items()]


def select(servers: list[ServerSpec], name: str) -> list[ServerSpec]:
    """`all` or one server by name (NotFound names the configured ones)."""
    if name == "all":
        return servers
    chosen = [spec for spec in servers if spec.name == name]
    if not chosen:
        known = ", ".join(spec.name for spec in servers) or "none configured"
        raise NotFound(f"no MCP server named {name!r} in {paths.mcp_config()}", f"configured: {known}")
    return chosen


def git_launcher() -> tuple[str, list[str]] | None:
    """uvx, else pipx run, by absolute path (cron's PATH lacks ~/.local/bin); None when neither is there.

    The git server runs outside the toolkit's environment: its dependencies (pydantic, GitPython,
    starlette, ...) never meet the toolkit's, and the toolkit's install stays small."""
    uvx = shutil.which("uvx")
    if uvx:
        return uvx, [f"{GIT_PACKAGE}@{GIT_VERSION}"]
    pipx = shutil.which("pipx")
    if pipx:
        return pipx, ["run", "--spec", f"{GIT_PACKAGE}=={GIT_VERSION}", GIT_PACKAGE]
    return None


def default_config() -> dict:
    """What agents need on a fresh machine: files (npm's reference server, Node ships with the
    image) and git (PyPI's mcp-server-git through uvx or pipx; plain `uvx` when neither is installed
    yet, install_default says how). Both get the project root; both start in the user's home, never
    the root."""
    root = str(paths.root())
    command, args = git_launcher() or ("uvx", [f"{GIT_PACKAGE}@{GIT_VERSION}"])
    return {
        "mcpServers": {
            "filesystem": {
                "type": "stdio",
                "command": "npx",
                "args": ["-y", FILESYSTEM_PACKAGE, root],
                "cwd": "${HOME}",
            },
            "git": {
                "type": "stdio",
                "command": command,
                "args": [*args, "--repository", root],
                "cwd": "${HOME}",
            },
        }
    }


def install_default(reset: bool) -> str:
    """Write the default config; never overwrite one without reset, and keep a dated copy when resetting.
    Written without uvx or pipx on PATH, it warns how to install uv."""
    path = paths.mcp_config()
    content = json.dumps(default_config(), indent=2) + "\n"
    if path.exists() and not reset:
        return f"MCP config kept: {path} (python scripts/init_evolution.py --reset-mcp writes the default)"
    if path.exists() and path.read_text(encoding="utf-8", errors="replace") == content:
        message = f"MCP config is already the default: {path}"
    elif path.exists():
        backup = path.with_name(f"{path.name}.{utcnow().strftime('%Y%m%dT%H%M%SZ')}.bak")
        if not backup.exists():
            shutil.copy2(path, backup)
        atomic_write(path, content, mode=0o600)
        message = f"MCP config reset to the default: {path} (previous file kept as {backup})"
    else:
        atomic_write(path, content, mode=0o600)
        message = f"MCP config written: {path}"
    if not git_launcher():
        log.warning(INSTALL_UV)
    return message
