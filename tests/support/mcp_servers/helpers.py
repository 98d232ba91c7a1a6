"""Helpers for the MCP tests: the test servers, a Streamable HTTP server, leftover processes."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

SERVERS = Path(__file__).resolve().parent
MARKER = "TDEV_MCP_LOG_DIR"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def script_server(name: str, **extra) -> dict:
    """A config entry that runs one of tests/mcp_servers/<name>.py with this interpreter."""
    return {"command": sys.executable, "args": [str(SERVERS / f"{name}.py")], **extra}


def time_server() -> dict:
    """The real mcp-server-time from PyPI, as its console script would run it."""
    return {"command": sys.executable, "args": ["-m", "mcp_server_time"]}


def write_config(path: Path, servers: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"mcpServers": servers}, indent=2))
    return path


def http_command(port: int, *options: str) -> list[str]:
    return [sys.executable, str(SERVERS / "http_server.py"), str(port), *options]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


class HttpServer:
    """The SDK's Streamable HTTP server in a subprocess (cwd outside the repository)."""

    def __init__(self, cwd: Path, *options: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        env = {k: v for k, v in os.environ.items() if k != MARKER}
        self.process = subprocess.Popen(http_command(self.port, *options), cwd=cwd, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def leftovers(log_dir: Path) -> list[psutil.Process]:
    """Processes started for a test: they carry its MCP log folder in their environment."""
    found = []
    for process in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            if process.pid != os.getpid() and process.environ().get(MARKER) == str(log_dir):
                found.append(process)
    return found


def end_all(processes: list[psutil.Process]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(processes, timeout=5)
