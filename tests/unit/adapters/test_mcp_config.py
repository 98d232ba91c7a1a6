"""lib.adapters.mcp_config and the pure parts of lib.adapters.mcp_control: expansion, parsing, defaults,
process matching."""

from __future__ import annotations

import json
import re
import stat

import pytest

from lib.adapters import mcp_config, mcp_control
from lib.adapters.mcp_config import ServerSpec, expand, parse_server
from lib.errors import ConfigError, NotFound


def test_expand_variables_and_defaults():
    env = {"TOKEN": "abc", "EMPTY": ""}
    assert expand("Bearer ${TOKEN}", env) == "Bearer abc"
    assert expand("${MISSING:-fallback}/x", env) == "fallback/x"
    assert expand("${EMPTY:-used when empty}", env) == "used when empty"
    assert expand("${EMPTY}", env) == ""
    assert expand("no variables $HOME", env) == "no variables $HOME"


def test_parse_stdio_http_and_unknown_keys():
    spec = parse_server("fs", {"command": "npx", "args": ["-y", "pkg", "${ROOT:-/srv}"], "env": {"A": "1"},
                               "disabled": False, "alwaysAllow": ["x"]}, {})
    assert (spec.transport, spec.argv, spec.env, spec.problem) == ("stdio", ["npx", "-y", "pkg", "/srv"], {"A": "1"},
                                                                   None)
    remote = parse_server("gh", {"url": "https://example.test/mcp", "headers": {"Authorization": "Bearer ${T}"}},
                          {"T": "tok"})
    assert (remote.transport, remote.headers["Authorization"]) == ("http", "Bearer tok")
    typed = parse_server("h", {"type": "streamable-http", "url": "http://127.0.0.1:1/mcp"}, {})
    assert typed.transport == "http" and typed.problem is None


@pytest.mark.parametrize("entry, problem", [
    ({"command": "x", "env": {"K": "${NOT_SET_ANYWHERE}"}}, "environment variable NOT_SET_ANYWHERE is not set"),
    ({"type": "sse", "url": "http://x"}, "transport 'sse' is not supported"),
    ({"args": ["a"]}, "a stdio server needs a command"),
    ({"type": "http"}, "an http server needs a url"),
    ({"command": "x", "args": "not a list"}, "args must be a list"),
    ("just a string", "entry must be an object"),
])
def test_parse_problems_stay_with_the_server(entry, problem):
    assert problem in parse_server("bad", entry, {}).problem


def test_working_dir_is_cwd_else_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert ServerSpec("a", "stdio", command="x").working_dir() == tmp_path
    assert ServerSpec("a", "stdio", command="x", cwd="/srv").working_dir().as_posix() == "/srv"


def test_load_errors_and_select(tdev):
    with pytest.raises(ConfigError, match="missing"):
        mcp_config.load()
    tdev.mcp_config.parent.mkdir(parents=True)
    tdev.mcp_config.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        mcp_config.load()
    tdev.mcp_config.write_text(json.dumps({"servers": {}}))
    with pytest.raises(ConfigError, match="mcpServers"):
        mcp_config.load()
    tdev.mcp_config.write_text(json.dumps({"mcpServers": {"a": {"command": "x"}, "b": {"command": "y"}}}))
    servers = mcp_config.load()
    assert [s.name for s in mcp_config.select(servers, "all")] == ["a", "b"]
    assert [s.name for s in mcp_config.select(servers, "b")] == ["b"]
    with pytest.raises(NotFound, match="configured: a, b"):
        mcp_config.select(servers, "c")


def test_install_default_never_overwrites_and_reset_keeps_a_dated_copy(tdev):
    message = mcp_config.install_default(reset=False)
    assert "written" in message and tdev.mcp_config.exists()
    assert stat.S_IMODE(tdev.mcp_config.stat().st_mode) == 0o600
    servers = {s.name: s for s in mcp_config.load()}
    assert set(servers) == {"filesystem", "git"}
    assert all(s.cwd and s.problem is None for s in servers.values())  # explicit cwd: never the project root
    tdev.mcp_config.write_text(json.dumps({"mcpServers": {"mine": {"command": "x"}}}))
    assert "kept" in mcp_config.install_default(reset=False)
    assert "mine" in tdev.mcp_config.read_text()
    message = mcp_config.install_default(reset=True)
    backups = list(tdev.mcp_config.parent.glob("claude.mcp.json.*.bak"))
    assert len(backups) == 1 and re.fullmatch(r"claude\.mcp\.json\.\d{8}T\d{6}Z\.bak", backups[0].name)
    assert str(backups[0]) in message and "mine" in backups[0].read_text()
    assert "filesystem" in tdev.mcp_config.read_text()
    assert "already the default" in mcp_config.install_default(reset=True)
    assert len(list(tdev.mcp_config.parent.glob("*.bak"))) == 1


def launchers(folder, *names: str) -> None:
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / name).write_text("#!/bin/sh\n")
        (folder / name).chmod(0o755)


def test_the_git_server_runs_through_uvx_or_pipx_outside_the_toolkit(tdev, monkeypatch, caplog):
    bin_dir = tdev.base / "bin"
    launchers(bin_dir)
    monkeypatch.setenv("PATH", str(bin_dir))
    mcp_config.install_default(reset=True)
    git = json.loads(tdev.mcp_config.read_text())["mcpServers"]["git"]
    assert (git["command"], git["args"][0]) == ("uvx", "mcp-server-git@2026.10.19")
    assert "install uv" in caplog.text and "init_evolution.py --reset-mcp" in caplog.text
    launchers(bin_dir, "pipx")
    assert mcp_config.git_launcher() == (str(bin_dir / "pipx"),
                                         ["run", "--spec", "mcp-server-git==2026.10.19", "mcp-server-git"])
    launchers(bin_dir, "uvx")
    caplog.clear()
    mcp_config.install_default(reset=True)
    git = json.loads(tdev.mcp_config.read_text())["mcpServers"]["git"]
    assert git["command"] == str(bin_dir / "uvx")  # absolute: cron's PATH does not matter
    assert git["args"] == ["mcp-server-git@2026.10.19", "--repository", str(mcp_config.paths.root())]
    assert caplog.text == ""


@pytest.mark.parametrize("cmdline, spec, expected", [
    (["npm", "exec", "@modelcontextprotocol/server-filesystem@1", "/srv"],
     ServerSpec("fs", "stdio", "npx", ["-y", "@modelcontextprotocol/server-filesystem@1", "/srv"]), True),
    (["npm", "exec", "@modelcontextprotocol/server-filesystem@1", "/other"],
     ServerSpec("fs", "stdio", "npx", ["-y", "@modelcontextprotocol/server-filesystem@1", "/srv"]), False),
    (["/usr/bin/python3", "-m", "mcp_server_git", "--repository", "/srv"],
     ServerSpec("git", "stdio", "/usr/bin/python3", ["-m", "mcp_server_git", "--repository", "/srv"]), True),
    (["/usr/bin/python3", "/usr/local/bin/mcp-server-time"], ServerSpec("t", "stdio", "mcp-server-time"), True),
    (["vim", "/srv"], ServerSpec("fs", "stdio", "npx", ["/srv"]), False),
    ([], ServerSpec("fs", "stdio", "npx", ["/srv"]), False),
])
def test_process_matching(cmdline, spec, expected):
    assert mcp_control.matches(cmdline, spec) is expected


def test_check_status():
    assert mcp_control.check_status([]) == "warning"
    assert mcp_control.check_status([{"status": "ok"}]) == "ok"
    assert mcp_control.check_status([{"status": "ok"}, {"status": "failed"}]) == "critical"


def test_a_key_twice_in_one_object_is_refused_but_not_across_objects(tmp_path):
    path = tmp_path / "claude.mcp.json"
    path.write_text('{"mcpServers": {\n  "a": {"command": "x", "args": [{"command": 1}]},\n'
                    '  "b": {"command": "y",\n        "env": {"K": "1"},\n        "command": "z"}}}\n')
    with pytest.raises(ConfigError, match=rf"^{path}: key 'command' appears twice, at lines 3 and 5; keep one"):
        mcp_config.read_raw(path)
    path.write_text('{"mcpServers": {"a": {"command": "x", "args": [{"command": 1}]}, "b": {"command": "y"}}}')
    assert [spec.command for spec in mcp_config.load(path)] == ["x", "y"]
