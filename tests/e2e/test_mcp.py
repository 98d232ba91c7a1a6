"""`python -m mcp.test` and restart_mcp.py end to end: a real PyPI server (mcp-server-time),
the SDK's Streamable HTTP server, and broken ones. No server process outlives a test."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from mcp_servers.helpers import (
    HttpServer,
    end_all,
    free_port,
    http_command,
    leftovers,
    script_server,
    time_server,
    wait_for_port,
    write_config,
)

from lib import procs

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cr3t-header-value-0123456789"


@pytest.fixture
def mcp(tdev):
    """The test's MCP config path; afterwards no process started for it may be left."""
    yield tdev
    left = leftovers(tdev.mcp_log_dir)
    end_all(left)
    assert not left, f"server processes outlived the test: {[p.pid for p in left]}"


@pytest.fixture
def http_server(tdev):
    server = HttpServer(tdev.base, "--token", TOKEN)
    yield server
    server.stop()


def run_test(tdev, *args):
    return tdev.run("-m mcp.test", *args)


def test_all_servers_concurrently_with_broken_ones(mcp, http_server):
    write_config(mcp.mcp_config, {
        "time": time_server(),
        "remote": {"type": "http", "url": http_server.url, "headers": {"Authorization": "Bearer ${MCP_TOKEN}"}},
        "missing": {"command": "tdev-no-such-mcp-server"},
        "exits": script_server("exits_at_once"),
        "hangs": script_server("hangs"),
        "garbage": script_server("garbage"),
    })
    result = mcp.run("-m mcp.test", "all", "--json", "--timeout", "6", env={"MCP_TOKEN": TOKEN})
    assert result.returncode == 2, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)["servers"]}
    assert list(rows) == ["time", "remote", "missing", "exits", "hangs", "garbage"]
    for row in rows.values():
        assert set(row) >= {"name", "transport", "status", "latency_ms", "protocol_version", "server_name",
                            "server_version", "tools", "error"}
    time_row, remote = rows["time"], rows["remote"]
    assert (time_row["status"], time_row["transport"], time_row["server_name"]) == ("ok", "stdio", "mcp-time")
    assert time_row["tools"] == 2 and "get_current_time" in time_row["tool_names"]
    assert time_row["protocol_version"] and time_row["latency_ms"] > 0 and time_row["error"] is None
    assert (remote["status"], remote["transport"], remote["server_name"], remote["server_version"],
            remote["tools"]) == ("ok", "http", "http-test", "1.2.3", 2)
    assert "command not found: tdev-no-such-mcp-server" in rows["missing"]["error"]
    assert "exited with code 3 before answering initialize" in rows["exits"]["error"]
    assert rows["exits"]["stderr_tail"] == ["fatal: cannot open database /nonexistent/db.sqlite"]
    assert "no answer to initialize within 6s" in rows["hangs"]["error"]
    assert "not JSON-RPC on stdout: Welcome to my server" in rows["garbage"]["error"]
    assert all(rows[name]["status"] == "failed" for name in ("missing", "exits", "hangs", "garbage"))

    server_log = (mcp.mcp_log_dir / "server.log").read_text()
    assert "[exits] fatal: cannot open database" in server_log
    assert "[hangs] starting up..." in server_log
    assert "[hangs] ERROR mcp.test failed: no answer to initialize" in server_log
    assert "[time] INFO mcp.test ok" in server_log
    assert "fatal: cannot open database" in (mcp.mcp_log_dir / "exits.log").read_text()
    assert TOKEN not in server_log + result.stdout + result.stderr


def test_table_shows_reason_and_last_stderr_lines(mcp):
    write_config(mcp.mcp_config, {"paged": script_server("paged_stdio"), "exits": script_server("exits_at_once")})
    result = run_test(mcp, "all")
    assert result.returncode == 2
    assert "MCP CRITICAL: exits (1 of 2 servers answered) | 'paged'=" in result.stdout
    assert "exits: server exited with code 3 before answering initialize" in result.stdout
    assert "  | fatal: cannot open database /nonexistent/db.sqlite" in result.stdout
    paged = next(line for line in result.stdout.splitlines() if line.startswith("paged"))
    assert "OK" in paged and "paged 0.1" in paged and paged.split()[-1] == "4"  # all pages of tools/list
    assert "client answered srv-1: error" in (mcp.mcp_log_dir / "paged.log").read_text()


def test_a_server_without_tools_is_ok(mcp):
    entry = script_server("paged_stdio")
    write_config(mcp.mcp_config, {"resources-only": {**entry, "args": [*entry["args"], "--no-tools"]}})
    [row] = json.loads(run_test(mcp, "all", "--json").stdout)["servers"]
    assert (row["status"], row["tools"], row["server_name"]) == ("ok", 0, "paged")


def test_one_server_by_name_ok(mcp):
    write_config(mcp.mcp_config, {"time": time_server(), "exits": script_server("exits_at_once")})
    result = run_test(mcp, "time")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MCP OK: 1 of 1 servers answered" in result.stdout and "mcp-time" in result.stdout


def test_http_json_replies_and_missing_header_variable(mcp, tdev):
    server = HttpServer(tdev.base, "--json")
    try:
        write_config(mcp.mcp_config, {
            "plain": {"type": "http", "url": server.url},
            "needs-token": {"type": "http", "url": server.url, "headers": {"Authorization": "Bearer ${NO_TOKEN_SET}"}},
        })
        rows = {row["name"]: row for row in json.loads(run_test(mcp, "all", "--json").stdout)["servers"]}
    finally:
        server.stop()
    assert rows["plain"]["status"] == "ok" and rows["plain"]["tools"] == 2
    assert rows["needs-token"]["error"] == ("config: environment variable NO_TOKEN_SET is not set "
                                            "(the config uses ${NO_TOKEN_SET})")


def test_http_wrong_token_and_nothing_listening(mcp, http_server):
    write_config(mcp.mcp_config, {
        "wrong": {"type": "http", "url": http_server.url, "headers": {"Authorization": "Bearer nope-nope-nope"}},
        "down": {"type": "http", "url": f"http://127.0.0.1:{free_port()}/mcp"},
    })
    result = run_test(mcp, "all", "--json")
    assert result.returncode == 2
    rows = {row["name"]: row for row in json.loads(result.stdout)["servers"]}
    assert "HTTP 401 on initialize" in rows["wrong"]["error"]
    assert "connection refused" in rows["down"]["error"]


@pytest.mark.parametrize("setup, args, code, message", [
    ({"a": {"command": "x"}}, ["nope"], 3, "no MCP server named 'nope'"),
    (None, ["all"], 3, "missing"),
    ("{broken", ["all"], 3, "not valid JSON"),
    ({"a": {"command": "x"}}, ["all", "--timeout", "-1"], 3, "--timeout"),
    ({}, ["all"], 1, None),
])
def test_check_exit_codes(mcp, setup, args, code, message):
    if isinstance(setup, dict):
        write_config(mcp.mcp_config, setup)
    elif isinstance(setup, str):
        mcp.mcp_config.parent.mkdir(parents=True, exist_ok=True)
        mcp.mcp_config.write_text(setup)
    result = run_test(mcp, *args)
    assert result.returncode == code, result.stdout + result.stderr
    if message:
        assert result.stderr.startswith("error:") and message in result.stderr
        assert "Traceback" not in result.stderr


def test_restart_http_with_command_and_running_stdio(mcp, tdev):
    port = free_port()
    command = http_command(port)
    write_config(mcp.mcp_config, {
        "remote": {"type": "http", "url": f"http://127.0.0.1:{port}/mcp", "command": command[0], "args": command[1:],
                   "cwd": str(tdev.base)},
        "paged": script_server("paged_stdio"),
    })
    client_owned = subprocess.Popen([sys.executable, str(script_server("paged_stdio")["args"][0])],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=tdev.env)
    try:
        dry = tdev.run("restart_mcp.py", "--all", "--dry-run")
        assert dry.returncode == 0 and "would end pid" in dry.stdout and client_owned.poll() is None
        assert not (tdev.history / "audit.log").exists()

        first = tdev.run("restart_mcp.py", "--all", "--json")
        assert first.returncode == 0, first.stdout + first.stderr
        rows = {row["name"]: row for row in json.loads(first.stdout)["servers"]}
        assert rows["remote"]["status"] == "ok" and rows["remote"]["tools"] == 2
        assert rows["paged"]["status"] == "ok" and f"ended pid {client_owned.pid}" in rows["paged"]["action"]
        assert client_owned.wait(10) is not None  # the client's stdio server was ended
        pid_file = tdev.history / "mcp" / "remote.pid"
        first_pid = int(pid_file.read_text().split()[0])
        wait_for_port(port)

        again = tdev.run("restart_mcp.py", "--name", "remote")
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"stopped pid {first_pid}" in again.stdout
        second_pid = int(pid_file.read_text().split()[0])
        assert second_pid != first_pid and not any(p.pid == first_pid for p in leftovers(tdev.mcp_log_dir))
        assert run_test(tdev, "remote").returncode == 0

        server_log = (tdev.mcp_log_dir / "server.log").read_text()
        assert "[remote] INFO restart_mcp: stopped" in server_log and "Uvicorn running" in server_log
        audit = [json.loads(line) for line in (tdev.history / "audit.log").read_text().splitlines()]
        assert [entry["result"] for entry in audit] == ["ok", "ok"] and audit[1]["servers"] == ["remote"]
    finally:
        from lib.adapters import mcp_config, mcp_control

        for spec in mcp_config.load():
            if spec.transport == "http":
                mcp_control.stop_http(spec)
        client_owned.kill()
        client_owned.wait()


def test_restart_never_signals_a_pid_file_whose_process_cannot_be_proven_the_pump(mcp, tdev):
    """The pid file names a process that looks like the server's log pump but started at another time (the
    pump died and the pid went on): restart_mcp leaves it alone and starts the server anew."""
    port = free_port()
    command = http_command(port)
    write_config(mcp.mcp_config, {"remote": {"type": "http", "url": f"http://127.0.0.1:{port}/mcp",
                                             "command": command[0], "args": command[1:], "cwd": str(tdev.base)}})
    look_alike = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "lib.adapters.mcp_logpump",
                                   "remote"], start_new_session=True)
    pid_file = tdev.history / "mcp" / "remote.pid"
    pid_file.parent.mkdir(parents=True)
    started = datetime.fromisoformat(procs.start_stamp(look_alike.pid)) - timedelta(hours=1)
    pid_file.write_text(f"{look_alike.pid} {started.isoformat()}\n")
    try:
        result = tdev.run("restart_mcp.py", "--name", "remote", "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        assert look_alike.poll() is None, "a process not proven to be the pump was signalled"
        [row] = json.loads(result.stdout)["servers"]
        assert row["status"] == "ok" and f"pid {look_alike.pid}" not in row["action"]
        pid, stamp = pid_file.read_text().split()
        assert int(pid) != look_alike.pid and procs.identify(int(pid), started=stamp, host=None,
                                                          argv=("lib.adapters.mcp_logpump", "remote"))[0] == "alive"
    finally:
        from lib.adapters import mcp_config, mcp_control

        for spec in mcp_config.load():
            mcp_control.stop_http(spec)
        look_alike.kill()
        look_alike.wait()


@pytest.mark.parametrize("args, code, message", [
    ([], 2, "give either --all or --name"),
    (["--all", "--name", "x"], 2, "give either --all or --name"),
    (["--name", "nope"], 1, "no MCP server named 'nope'"),
])
def test_restart_usage(mcp, args, code, message):
    write_config(mcp.mcp_config, {"a": {"command": "x"}})
    result = mcp.run("restart_mcp.py", *args)
    assert result.returncode == code and message in result.stderr


def test_init_evolution_reset_mcp_keeps_a_dated_copy(mcp):
    first = mcp.run("init_evolution.py")
    assert first.returncode == 0 and f"MCP config written: {mcp.mcp_config}" in first.stdout
    write_config(mcp.mcp_config, {"mine": {"command": "x"}})
    kept = mcp.run("init_evolution.py")
    assert "MCP config kept" in kept.stdout and "mine" in mcp.mcp_config.read_text()
    reset = mcp.run("init_evolution.py", "--reset-mcp")
    assert reset.returncode == 0, reset.stderr
    [backup] = mcp.mcp_config.parent.glob("claude.mcp.json.*.bak")
    assert f"previous file kept as {backup}" in reset.stdout and "mine" in backup.read_text()
    servers = json.loads(mcp.mcp_config.read_text())["mcpServers"]
    assert set(servers) == {"filesystem", "git"} and all(entry["cwd"] == "${HOME}" for entry in servers.values())
    audit = mcp.run("security_audit.py", "--json", env={"TDEV_HOME": str(mcp.base)})
    assert not [f for f in json.loads(audit.stdout)["findings"] if f["rule"] == "mcp-shim-shadowing"]


def test_restart_reports_a_server_that_dies_at_start(mcp, tdev):
    command = http_command(free_port())
    write_config(mcp.mcp_config, {"broken": {"type": "http", "url": "http://127.0.0.1:9/mcp", "command": command[0],
                                             "args": [command[1], "not-a-port"], "cwd": str(tdev.base)}})
    result = mcp.run("restart_mcp.py", "--name", "broken", "--json")
    assert result.returncode == 1
    [row] = json.loads(result.stdout)["servers"]
    assert row["status"] == "failed" and "the server exited (code 2) right after the start" in row["error"]
    assert "invalid int value: 'not-a-port'" in (tdev.mcp_log_dir / "broken.log").read_text()
    assert "1 server(s) failed the test after the restart: broken" in result.stderr
    assert f"see {tdev.mcp_log_dir / 'broken.log'} and {tdev.mcp_log_dir / 'server.log'}" in result.stderr
    assert "~/.mcp" not in result.stderr  # TDEV_MCP_LOG_DIR moved the logs: the message names where they are
    assert json.loads((tdev.history / "audit.log").read_text())["result"] == "failed"


def test_a_stopped_tester_leaves_no_server(mcp):
    write_config(mcp.mcp_config, {"hangs": script_server("hangs"), "paged": script_server("paged_stdio")})
    tester = subprocess.Popen([sys.executable, "-m", "mcp.test", "all", "--timeout", "60"], cwd=ROOT, env=mcp.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    hangs_log = mcp.mcp_log_dir / "hangs.log"
    deadline = time.monotonic() + 30
    while not (hangs_log.exists() and "starting up" in hangs_log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftovers(mcp.mcp_log_dir), "the hanging server never started"
    tester.terminate()  # what cron's `timeout` or a kill does
    _, stderr = tester.communicate(timeout=30)
    assert tester.returncode == 130 and "interrupted" in stderr
    assert not leftovers(mcp.mcp_log_dir)
