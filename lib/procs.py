"""Is a stored pid still the process we started? `identify` is asked before any stored pid is signalled.

A pid names whatever process the kernel last gave that number: once the runner (or a
server, or an agent) is gone, the number may belong to an unrelated program, and a
signal sent to it hurts a bystander. So a pid is stored with the process's start time
(`start_stamp`), and before a signal `identify` asks three things: the same host, the
same start time, and a command line (or environment) naming what was started. A child we still hold
(a Popen) needs no proof: `end_tree` ends it with everything it started.
"""

from __future__ import annotations

import socket
import subprocess
from datetime import UTC, datetime

#: Start times are boot time plus clock ticks; boot time moves a little with NTP, pid reuse takes longer.
START_TOLERANCE_SECONDS = 1.0

ALIVE, GONE, OTHER, DOUBT, REMOTE, UNKNOWN = "alive", "gone", "other", "doubt", "remote", "unknown"


def start_stamp(pid: int) -> str | None:
    """When the live process pid started (UTC ISO, milliseconds), None when it is gone already."""
    import psutil

    try:
        return start_time_iso(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def start_time_iso(seconds: float) -> str:
    """A process start time (seconds since the epoch, as psutil gives it) as it is stored."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


def alive(pid: int | None) -> bool:
    """Whether some process (not a zombie) has this pid: says nothing about which one it is."""
    import psutil

    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _same_start(recorded: str, seconds: float) -> bool:
    then = datetime.fromisoformat(recorded).timestamp()
    return abs(then - seconds) <= START_TOLERANCE_SECONDS


def identify(pid: int | None, *, started: str | None, host: str | None, argv: tuple[str, ...] = (),
             env: tuple[str, str] | None = None, what: str = "process") -> tuple[str, str]:
    """(state, detail) for the process recorded as pid, started at `started`, on `host`.

    The command line must hold every word of argv as one of its arguments, or the
    environment must carry env (key, value); with neither given, the start time alone
    decides (pid and start time name one process on a host). States:
    alive  - proven: this is the recorded process (the only state in which to signal it);
    gone   - no such process;
    other  - the pid now belongs to another program (or started at another time);
    doubt  - it names what was started but its start time differs, or it cannot be read:
             neither signal it nor take it for dead;
    remote - recorded on another host; unknown - no pid recorded.
    """
    import psutil

    if host and host != socket.gethostname():
        return REMOTE, f"{what} runs on host {host}"
    if not pid:
        return UNKNOWN, f"no {what} pid recorded yet"
    try:
        process = psutil.Process(int(pid))
        if process.status() == psutil.STATUS_ZOMBIE:
            return GONE, f"{what} process {pid} is gone"
        began = process.create_time()
        name = process.name()
    except psutil.NoSuchProcess:
        return GONE, f"{what} process {pid} is gone"
    except psutil.AccessDenied:
        return DOUBT, f"process {pid} belongs to another user; cannot tell whether it is the {what}"
    same_start = None if not started else _same_start(started, began)
    try:
        named = _names(process, argv, env)
    except psutil.NoSuchProcess:  # it exited while being read (a zombie's command line raises too)
        return GONE, f"{what} process {pid} is gone"
    if named is False or (same_start is False and named is None):
        return OTHER, f"pid {pid} is now {name!r} (started {start_time_iso(began)}), not the {what}"
    if same_start is False:
        return DOUBT, (f"process {pid} looks like the {what} but started at {start_time_iso(began)}, not at "
                       f"{started} as recorded; cannot prove it is the same process")
    if named is None and same_start is None:
        return DOUBT, (f"process {pid} cannot be inspected and no start time was recorded; cannot tell whether it "
                       f"is the {what}")
    return ALIVE, f"{what} process {pid} is alive"


def _names(process, argv: tuple[str, ...], env: tuple[str, str] | None) -> bool | None:
    """True when the command line or environment names what was started, False when neither does,
    None when neither can be read (or nothing was asked). A process that is exiting (or not yet a zombie
    after its exit) reads as an empty command line and environment: that says nothing about which
    program it is, so it counts as unreadable, never as another program."""
    import psutil

    if not argv and not env:
        return None  # nothing to compare: the start time decides
    readable = False
    try:
        cmdline = process.cmdline()
        readable = bool(cmdline)
        if argv and all(word in cmdline for word in argv):
            return True
    except psutil.AccessDenied:
        pass
    if env:
        try:
            environ = process.environ()
            readable = readable or bool(environ)
            if environ.get(env[0]) == env[1]:
                return True
        except psutil.AccessDenied:
            pass
    return False if readable else None


def end_tree(process: subprocess.Popen) -> None:
    """Kill a process and everything it started, so no orphan outlives a timeout (agents, test runs)."""
    import psutil

    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for proc in [*children]:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    process.kill()
