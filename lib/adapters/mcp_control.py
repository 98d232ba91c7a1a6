"""Operating the configured MCP servers: test them all at once, restart them.

`python -m mcp.test` and restart_mcp.py are thin shells around test_all() and restart() (their printing:
lib/ops/mcp_servers.py).
Long-running (http) servers that have a `command` run detached under lib/adapters/mcp_logpump.py,
which leads their process group and copies their output into the MCP logs; their pid
file <history>/mcp/<name>.pid holds its pid and start time. Stdio servers belong to their clients: a restart ends
the running ones so that each client starts a fresh one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lib import checks, paths, procs
from lib.adapters import mcp_client
from lib.adapters.mcp_config import ServerSpec

# launchers whose process shows another name once running (npx becomes `npm exec ...`)
LAUNCHED_AS = {"npx": "npm", "uvx": "uv", "pipx": "pipx", "bunx": "bun"}
STOP_GRACE_SECONDS = 5.0
LOGPUMP = "lib.adapters.mcp_logpump"


def test_all(servers: list[ServerSpec], timeout: float) -> list[dict]:
    """Every server tested concurrently; rows in config order."""
    return concurrently(lambda spec: mcp_client.probe(spec, timeout), servers)


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM (cron's timeout, kill) stops a test like Ctrl-C does, so that no server is left."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def concurrently(func, servers: list[ServerSpec]) -> list:
    """func(spec) for every server at once, in order; an interruption ends the servers under test."""
    if not servers:
        return []
    with _sigterm_interrupts():
        pool = ThreadPoolExecutor(max_workers=len(servers), thread_name_prefix="mcp")
        try:
            return list(pool.map(func, servers))
        except BaseException:
            mcp_client.end_running()
            raise
        finally:
            pool.shutdown(wait=True)


def check_status(rows: list[dict]) -> str:
    """ok, warning (nothing configured) or critical (a server failed)."""
    if not rows:
        return "warning"
    return "critical" if any(row["status"] != "ok" for row in rows) else "ok"


def report(rows: list[dict]) -> checks.Report:
    """The plugin line: the servers that failed; each server's handshake time as perfdata."""
    failed = [row for row in rows if row["status"] != "ok"]
    context = f"{len(rows) - len(failed)} of {len(rows)} servers answered" + (
        f" ({paths.mcp_config()})" if not rows else "")
    return checks.Report("MCP", check_status(rows), [
        {"name": row["name"], "status": checks.CRITICAL, "summary": row["error"]} for row in failed], context,
        [checks.Perf(row["name"], row["latency_ms"] if row["status"] == "ok" else None, "ms") for row in rows])


# ---- processes ------------------------------------------------------------------------

def pid_file(name: str) -> Path:
    return paths.history_dir() / "mcp" / f"{name}.pid"


def matches(cmdline: list[str], spec: ServerSpec) -> bool:
    """True when a process command line is this server: same program, its arguments in order.

    Options such as npx's -y are left out of the comparison: launchers rewrite them.
    """
    if not cmdline or not spec.command:
        return False
    program = Path(spec.command).name
    shown = {Path(part).name for part in cmdline[:2]}
    if program not in shown and LAUNCHED_AS.get(program) not in shown:
        return False
    wanted = iter(cmdline[1:])
    return all(any(part == arg for part in wanted) for arg in spec.args if not arg.startswith("-"))


def running(spec: ServerSpec) -> list:
    """This user's processes that are this server (never this process or its ancestors)."""
    import psutil

    mine = {os.getpid(), *(parent.pid for parent in psutil.Process().parents())}
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "uids"]):
        with contextlib.suppress(psutil.Error):
            if process.pid in mine or process.info["uids"] is None or process.info["uids"].real != os.getuid():
                continue
            if matches(process.info["cmdline"] or [], spec):
                found.append(process)
    return found


def end_processes(processes: list, grace: float = STOP_GRACE_SECONDS) -> list[int]:
    """TERM each process with its children, KILL what is left after the grace period."""
    import psutil

    targets = {}
    for process in processes:
        with contextlib.suppress(psutil.Error):
            for member in [process, *process.children(recursive=True)]:
                targets[member.pid] = member
    for member in targets.values():
        with contextlib.suppress(psutil.Error):
            member.terminate()
    _, alive = psutil.wait_procs(list(targets.values()), timeout=grace)
    for member in alive:
        with contextlib.suppress(psutil.Error):
            member.kill()
    psutil.wait_procs(alive, timeout=grace)
    return sorted(process.pid for process in processes)


def _recorded_pid(spec: ServerSpec) -> int | None:
    """The pid in the server's pid file when that process is proven to be still our log pump for it."""
    try:
        pid, _, started = pid_file(spec.name).read_text().strip().partition(" ")
        pid = int(pid)
    except (OSError, ValueError):
        return None
    state, _ = procs.identify(pid, started=started or None, host=None, argv=(LOGPUMP, spec.name),
                           what=f"log pump of {spec.name}")
    return pid if state == procs.ALIVE else None


def stop_http(spec: ServerSpec) -> list[int]:
    """Stop a long-running server: its recorded process group, and copies started by hand."""
    stopped = []
    pid = _recorded_pid(spec)
    if pid and mcp_client.end_group(pid, STOP_GRACE_SECONDS):
        stopped.append(pid)
    stopped += end_processes(running(spec))
    pid_file(spec.name).unlink(missing_ok=True)
    return stopped


def start_http(spec: ServerSpec) -> subprocess.Popen:
    """Start a long-running server detached, under the log pump, and record its pid."""
    log_dir = paths.mcp_log_dir()
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    argv = [sys.executable, "-m", LOGPUMP, spec.name, str(log_dir), str(spec.working_dir()), "--",
            *spec.argv]
    with open(os.devnull, "rb") as nothing:
        process = subprocess.Popen(argv, cwd=paths.CODE_ROOT, env={**os.environ, **spec.env}, stdin=nothing,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    pid_file(spec.name).parent.mkdir(parents=True, exist_ok=True)
    pid_file(spec.name).write_text(f"{process.pid} {procs.start_stamp(process.pid) or ''}".rstrip() + "\n")
    return process


def wait_until_up(spec: ServerSpec, timeout: float, process: subprocess.Popen) -> dict:
    """Probe a freshly started server until it answers, exits, or the timeout passes."""
    end = time.monotonic() + timeout
    log = mcp_client.ServerLog(spec.name)
    while True:
        row = mcp_client.probe(spec, max(1.0, min(timeout, end - time.monotonic())), record=False)
        if row["status"] != "ok" and process.poll() is not None:
            row["error"] = f"the server exited (code {process.returncode}) right after the start; see {log.path}"
            row["stderr_tail"] = log.last_lines()
        if row["status"] == "ok" or process.poll() is not None or time.monotonic() >= end:
            mcp_client.record_result(log, row)
            return row
        time.sleep(0.3)


def _restart_one(spec: ServerSpec, dry_run: bool, started: dict[str, subprocess.Popen]) -> str:
    """Restart one server as its transport allows; returns what was done (or would be)."""
    if spec.problem:
        return f"skipped: {spec.problem}"
    log = mcp_client.ServerLog(spec.name)
    if spec.transport == "http" and spec.command:
        if dry_run:
            return "would stop and start the server"
        stopped = stop_http(spec)
        started[spec.name] = start_http(spec)
        log.event("INFO", f"restart_mcp: stopped {stopped or 'nothing'}, started pid {started[spec.name].pid}")
        return f"stopped {_pids(stopped)}, started pid {started[spec.name].pid}"
    if spec.transport == "http":
        return "remote server: nothing to restart"
    processes = running(spec)
    if dry_run:
        return f"would end {_pids([p.pid for p in processes])}"
    ended = end_processes(processes)
    if not ended:
        return "no running process: clients start it when they need it"
    log.event("INFO", f"restart_mcp: ended {ended}; clients start fresh servers")
    return f"ended {_pids(ended)}; clients start fresh ones"


def restart(servers: list[ServerSpec], timeout: float, dry_run: bool) -> list[dict]:
    """Stop and start http servers that have a command, end running stdio ones, then test each."""
    started: dict[str, subprocess.Popen] = {}
    actions = [{"name": spec.name, "action": _restart_one(spec, dry_run, started)} for spec in servers]
    if dry_run:
        return [{**action, "status": "not tested (dry run)", "error": None} for action in actions]
    rows = concurrently(lambda spec: (wait_until_up(spec, timeout, started[spec.name]) if spec.name in started
                                      else mcp_client.probe(spec, timeout)), servers)
    return [{**action, **{k: row[k] for k in ("status", "error", "latency_ms", "tools")}}
            for action, row in zip(actions, rows, strict=True)]


def _pids(pids: list[int]) -> str:
    if not pids:
        return "no running process"
    return "pid " + ", ".join(str(pid) for pid in pids)
