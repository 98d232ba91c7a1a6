"""A minimal MCP client for health tests: stdio and Streamable HTTP, without the `mcp` SDK.

lib/ must not import the SDK (DESIGN §1: the mcp/ shim at the root would shadow it), and
a health test needs only the handshake: initialize, notifications/initialized and
tools/list (following nextCursor). Every read is bounded by one deadline per server.
A stdio server runs in its own process group, started in its configured cwd (else the
user's home); the group is ended when the test is over, whatever happened. The server's
stderr goes to <mcp log dir>/<name>.log and, prefixed with time and name, to server.log.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path

from lib import paths
from lib.adapters.mcp_config import ServerSpec
from lib.errors import ExternalError
from lib.log import mask_secrets
from lib.timeparse import iso

PROTOCOL_VERSION = "2025-06-18"
CLIENT_INFO = {"name": "t-developer-ops", "version": "2.0.0"}
MAX_TOOL_PAGES = 100
_LOG_LOCK = threading.Lock()
_RUNNING: set[int] = set()  # process groups of stdio servers under test, for end_running()
_RUNNING_LOCK = threading.Lock()


class ServerFailed(ExternalError):
    """The server did not complete the handshake; the message is the reason an operator reads."""


class Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self, waiting_for: str) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise ServerFailed(f"no answer to {waiting_for} within {self.seconds:g}s")
        return remaining


class ServerLog:
    """One server's log lines: <name>.log as written, server.log prefixed; keeps the last few."""

    def __init__(self, name: str, log_dir: Path | None = None, keep: int = 8):
        self.name = name
        self.dir = log_dir or paths.mcp_log_dir()
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.dir / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name).lstrip('.') or 'server'}.log"
        self.tail: deque[str] = deque(maxlen=keep)

    def _write(self, own: str | None, shared: str) -> None:
        with _LOG_LOCK:
            if own is not None:
                with open(self.path, "a", encoding="utf-8") as handle:
                    handle.write(own + "\n")
            with open(self.dir / "server.log", "a", encoding="utf-8") as handle:
                handle.write(shared + "\n")

    def stderr(self, raw: str) -> None:
        """A line the server wrote on stderr (masked: servers sometimes print their tokens)."""
        line = mask_secrets(raw.rstrip("\r\n"))
        if line:
            self.tail.append(line)
            self._write(line, f"{iso()} [{self.name}] {line}")

    def last_lines(self) -> list[str]:
        """The end of <name>.log (what a detached server wrote before it exited)."""
        try:
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                return [line.rstrip("\n") for line in deque(handle, maxlen=self.tail.maxlen)]
        except OSError:
            return []

    def event(self, level: str, message: str) -> None:
        """A line of ours (test result, restart) so that `grep ERROR server.log` finds failures."""
        message = mask_secrets(message)
        self._write(f"{iso()} {level} {message}", f"{iso()} [{self.name}] {level} {message}")


class Session:
    """The handshake, common to both transports; subclasses move JSON-RPC messages."""

    def __init__(self, spec: ServerSpec, deadline: Deadline, log: ServerLog):
        self.spec = spec
        self.deadline = deadline
        self.log = log
        self.ids = itertools.count(1)
        self.protocol_version = PROTOCOL_VERSION

    def request(self, method: str, params: dict) -> dict:
        raise NotImplementedError

    def notify(self, method: str, params: dict | None = None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the server (end the process group, close the HTTP session)."""

    def handshake(self, started: float) -> dict:
        result = self.request("initialize", {
            "protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO})
        latency_ms = int((time.monotonic() - started) * 1000)
        if "protocolVersion" not in result:
            raise ServerFailed(f"initialize answered without a protocolVersion: {_short(result)}")
        self.protocol_version = str(result["protocolVersion"])
        info = result.get("serverInfo") or {}
        self.notify("notifications/initialized")
        tools: list[str] = []
        cursor = None
        offers_tools = "tools" in (result.get("capabilities") or {})
        for _ in range(MAX_TOOL_PAGES if offers_tools else 0):
            page = self.request("tools/list", {"cursor": cursor} if cursor else {})
            tools += [str(tool.get("name")) for tool in page.get("tools", []) if isinstance(tool, dict)]
            cursor = page.get("nextCursor")
            if not cursor:
                break
        return {"latency_ms": latency_ms, "protocol_version": self.protocol_version,
                "server_name": info.get("name"), "server_version": info.get("version"), "tools": tools}

    def _message(self, payload_id: int, method: str, params: dict) -> dict:
        return {"jsonrpc": "2.0", "id": payload_id, "method": method, "params": params}

    @staticmethod
    def _answer(message: dict, method: str):
        if "error" in message:
            error = message["error"] if isinstance(message["error"], dict) else {"message": message["error"]}
            raise ServerFailed(f"{method} failed: {error.get('message')} (code {error.get('code')})")
        result = message.get("result")
        if not isinstance(result, dict):
            raise ServerFailed(f"{method} answered with a result that is not an object: {_short(result)}")
        return result


class StdioSession(Session):
    """Newline-delimited JSON-RPC over the pipes of a child process group."""

    def start(self) -> None:
        cwd = self.spec.working_dir()
        if not cwd.is_dir():
            raise ServerFailed(f"cwd {cwd} does not exist")
        try:
            self.process = subprocess.Popen(
                self.spec.argv, cwd=cwd, env={**os.environ, **self.spec.env}, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except FileNotFoundError:
            raise ServerFailed(f"command not found: {self.spec.command} (not on PATH or no such file)") from None
        except PermissionError:
            raise ServerFailed(f"command not executable: {self.spec.command}") from None
        with _RUNNING_LOCK:
            _RUNNING.add(self.process.pid)
        self.lines: queue.Queue = queue.Queue()
        self.readers = [threading.Thread(target=self._read_stdout, daemon=True),
                        threading.Thread(target=self._read_stderr, daemon=True)]
        for reader in self.readers:
            reader.start()

    def _read_stdout(self) -> None:
        for raw in iter(self.process.stdout.readline, b""):
            self.lines.put(raw)
        self.lines.put(None)

    def _read_stderr(self) -> None:
        for raw in iter(self.process.stderr.readline, b""):
            self.log.stderr(raw.decode("utf-8", errors="replace"))

    def _send(self, message: dict) -> None:
        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise self._exited(message.get("method", "")) from None

    def _exited(self, method: str) -> ServerFailed:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=min(1.0, max(0.05, self.deadline.end - time.monotonic())))
        self.readers[1].join(0.5)  # the last stderr lines explain most exits
        code = self.process.poll()
        state = f"exited with code {code}" if code is not None else "closed its stdout"
        return ServerFailed(f"server {state} before answering {method}")

    def notify(self, method: str, params: dict | None = None) -> None:
        self._send({"jsonrpc": "2.0", "method": method, **({"params": params} if params else {})})

    def request(self, method: str, params: dict) -> dict:
        payload_id = next(self.ids)
        self._send(self._message(payload_id, method, params))
        while True:
            try:
                raw = self.lines.get(timeout=self.deadline.left(method))
            except queue.Empty:
                raise ServerFailed(f"no answer to {method} within {self.deadline.seconds:g}s") from None
            if raw is None:
                raise self._exited(method)
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            try:
                message = json.loads(text)
            except ValueError:
                raise ServerFailed(f"wrote something that is not JSON-RPC on stdout: {_short(text)}") from None
            if not isinstance(message, dict):
                raise ServerFailed(f"wrote a JSON value that is not a JSON-RPC message: {_short(text)}")
            if message.get("id") == payload_id and "method" not in message:
                return self._answer(message, method)
            if "method" in message and "id" in message:  # a request from the server: we offer nothing
                self._send({"jsonrpc": "2.0", "id": message["id"],
                            "error": {"code": -32601, "message": "method not supported by this client"}})

    def close(self) -> None:
        process = getattr(self, "process", None)
        if process is None:
            return
        with contextlib.suppress(OSError, ValueError):
            process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.3)
        end_group(process.pid, grace=1.0)
        with _RUNNING_LOCK:
            _RUNNING.discard(process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=1.0)
        for reader in self.readers:
            reader.join(0.5)
        for stream in (process.stdout, process.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.close()


class HttpSession(Session):
    """Streamable HTTP: POST each message, read JSON or an SSE stream, carry the session id."""

    def start(self) -> None:
        import requests

        self.http = requests.Session()
        self.http.headers.update({"Accept": "application/json, text/event-stream",
                                  "Content-Type": "application/json", **self.spec.headers})
        self.session_id = None

    def _post(self, message: dict, method: str):
        import requests

        headers = {}
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if method != "initialize":
            headers["MCP-Protocol-Version"] = self.protocol_version
        left = self.deadline.left(method)
        try:
            response = self.http.post(self.spec.url, data=json.dumps(message), headers=headers, stream=True,
                                      timeout=(min(5.0, left), left))
        except requests.Timeout:
            raise ServerFailed(f"no answer to {method} within {self.deadline.seconds:g}s") from None
        except requests.ConnectionError as failure:
            reason = "connection refused" if "refused" in str(failure).lower() else type(failure).__name__
            hint = f" (start it: python scripts/restart_mcp.py --name {self.spec.name})" if self.spec.command else ""
            raise ServerFailed(f"cannot connect to {_url(self.spec.url)}: {reason}{hint}") from None
        if response.status_code in (401, 403):
            raise ServerFailed(f"HTTP {response.status_code} on {method}: check the headers (token) of "
                               f"{self.spec.name} in the MCP config")
        if response.status_code >= 400:
            raise ServerFailed(f"HTTP {response.status_code} on {method}: {_short(response.text)}")
        return response

    def notify(self, method: str, params: dict | None = None) -> None:
        self._post({"jsonrpc": "2.0", "method": method, **({"params": params} if params else {})}, method).close()

    def request(self, method: str, params: dict) -> dict:
        payload_id = next(self.ids)
        response = self._post(self._message(payload_id, method, params), method)
        with response:
            if method == "initialize" and response.headers.get("Mcp-Session-Id"):
                self.session_id = response.headers["Mcp-Session-Id"]
            kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if kind == "text/event-stream":
                messages = self._events(response, method)
            elif kind == "application/json":
                try:
                    document = json.loads(response.content)
                except ValueError:
                    raise ServerFailed(f"{method}: the reply is not JSON: {_short(response.text)}") from None
                messages = document if isinstance(document, list) else [document]
            else:
                raise ServerFailed(f"{method}: unexpected reply type {kind or 'none'} (HTTP {response.status_code})")
            for message in messages:
                if isinstance(message, dict) and message.get("id") == payload_id and "method" not in message:
                    return self._answer(message, method)
        raise ServerFailed(f"{method}: the reply ended without an answer")

    def _events(self, response, method: str):
        """JSON-RPC messages of an SSE stream, each `data:` block one message, until the deadline."""
        import requests

        data: list[str] = []
        try:
            for line in response.iter_lines(decode_unicode=True):
                self.deadline.left(method)
                if line is None:
                    continue
                if line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
                elif not line and data:
                    text, data = "\n".join(data), []
                    try:
                        yield json.loads(text)
                    except ValueError:
                        raise ServerFailed(f"{method}: an event is not JSON: {_short(text)}") from None
        except requests.RequestException:
            raise ServerFailed(f"no answer to {method} within {self.deadline.seconds:g}s") from None
        if data:
            yield json.loads("\n".join(data))

    def close(self) -> None:
        http = getattr(self, "http", None)
        if http is None:
            return
        if self.session_id:  # ending the session is polite; a server may refuse (405)
            with contextlib.suppress(Exception):
                http.delete(self.spec.url, headers={"Mcp-Session-Id": self.session_id,
                                                    "MCP-Protocol-Version": self.protocol_version}, timeout=2)
        http.close()


def end_running() -> None:
    """KILL every server group still under test (the tester itself is being stopped)."""
    with _RUNNING_LOCK:
        groups = list(_RUNNING)
    for pid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def end_group(pid: int, grace: float = 5.0) -> bool:
    """TERM the process group led by pid, KILL it after the grace period; True if it was running."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return False
    end = time.monotonic() + grace
    while time.monotonic() < end:
        try:
            os.killpg(pid, 0)
        except (ProcessLookupError, PermissionError):
            return True
        _reap(pid)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    return True


def _reap(pid: int) -> None:
    """Collect our own exited child so that the group check above does not see a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def probe(spec: ServerSpec, timeout: float = 10.0, log_dir: Path | None = None, record: bool = True) -> dict:
    """Test one server: the handshake result as the JSON row of `python -m mcp.test --json`.

    record=False leaves the result out of the logs (a restart polling a server that is starting).
    """
    row = {"name": spec.name, "transport": spec.transport, "status": "failed", "latency_ms": None,
           "protocol_version": None, "server_name": None, "server_version": None, "tools": None, "error": None,
           "tool_names": [], "duration_ms": None, "stderr_tail": []}
    log = ServerLog(spec.name, log_dir)
    row["log"] = str(log.path)
    started = time.monotonic()
    session = None
    try:
        if spec.problem:
            raise ServerFailed(f"config: {spec.problem}")
        session = (HttpSession if spec.transport == "http" else StdioSession)(spec, Deadline(timeout), log)
        session.start()
        found = session.handshake(started)
        row.update(found, status="ok", tools=len(found["tools"]), tool_names=found["tools"])
    except ServerFailed as failure:
        row["error"] = failure.message
    finally:
        if session is not None:
            session.close()
    row["duration_ms"] = int((time.monotonic() - started) * 1000)
    row["stderr_tail"] = list(log.tail)
    if record:
        record_result(log, row)
    return row


def record_result(log: ServerLog, row: dict) -> None:
    if row["status"] == "ok":
        log.event("INFO", f"mcp.test ok: {row['server_name']} {row['server_version']}, {row['tools']} tools, "
                          f"handshake {row['latency_ms']} ms")
    else:
        log.event("ERROR", f"mcp.test failed: {row['error']}")


def _short(value, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = mask_secrets(" ".join(text.split()))
    return text if len(text) <= limit else text[:limit] + "…"


def _url(url: str | None) -> str:
    """A URL without its query (tokens sometimes travel there)."""
    return (url or "").split("?")[0]
