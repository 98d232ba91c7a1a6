"""An agent's process tree (DESIGN §5 "Agent processes"): run, read with a bound, end all of it.

A `command` agent runs in a session of its own with its task id in its environment
(TDEV_TASK_ID). It is done when it has exited: what it wrote is then in the pipe, so its
leftovers (a grandchild that still holds stdout) are ended and the pipes drained for at most
DRAIN_SECONDS. At the timeout, or when stdout passes its bound, the whole tree is ended at once:
the agent's process group, and every process that left the session but carries the task id in
its environment and started after the agent (proven ours: task ids are unique).
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass

#: The environment variable that marks every process of one agent call.
TASK_ENV = "TDEV_TASK_ID"
#: How long the pipes may stay open after the agent exited and its tree was ended.
DRAIN_SECONDS = 5.0
#: How much of stderr is kept: its end, for the error line and stderr_tail.
STDERR_KEEP_BYTES = 64 * 1024
#: Start times are boot time plus clock ticks: a descendant may look a little older than the agent.
START_TOLERANCE_SECONDS = 1.0
CHUNK = 64 * 1024


@dataclass
class Finished:
    """What one agent process left: its exit code (None when it was ended), stdout (at most the bound,
    and all of it unless `overflowed`), the end of stderr, and why it was ended early if it was."""

    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    overflowed: bool = False


def run(argv: list[str], *, stdin: bytes, env: dict, cwd, timeout: float, task_id: str,
        max_stdout: int) -> Finished:
    """Run argv with stdin, in a new session with TDEV_TASK_ID=task_id, for at most timeout seconds.

    Raises OSError when argv cannot be started.
    """
    since = time.time()
    process = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env={**env, TASK_ENV: task_id}, start_new_session=True)
    try:
        return _supervise(process, stdin, timeout, task_id, since, max_stdout)
    finally:
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe and not pipe.closed:
                pipe.close()


def _supervise(process: subprocess.Popen, data: bytes, timeout: float, task_id: str, since: float,
               max_stdout: int) -> Finished:
    """The select loop: feed stdin, read stdout (bounded) and stderr (its end), notice the exit (a pidfd)."""
    stdout, stderr = bytearray(), bytearray()
    selector = selectors.DefaultSelector()
    exited = None
    view, written = memoryview(data), 0
    deadline = time.monotonic() + timeout
    timed_out = overflowed = False
    try:
        exited = os.pidfd_open(process.pid)
        selector.register(exited, selectors.EVENT_READ, "exit")
        selector.register(process.stdout, selectors.EVENT_READ, "stdout")
        selector.register(process.stderr, selectors.EVENT_READ, "stderr")
        os.set_blocking(process.stdin.fileno(), False)
        selector.register(process.stdin, selectors.EVENT_WRITE, "stdin")
        reading = {"stdout", "stderr"}
        while (process.returncode is None or reading) and not overflowed:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = process.returncode is None
                break
            for key, _ in selector.select(left):
                if key.data == "exit":
                    selector.unregister(exited)
                    end_tree(process, task_id, since)  # the agent is done: its leftovers go with it
                    process.wait()
                    _close(selector, process.stdin)
                    deadline = time.monotonic() + DRAIN_SECONDS
                elif key.data == "stdin":
                    written = _feed(selector, process.stdin, view, written)
                else:
                    chunk = os.read(key.fd, CHUNK)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        reading.discard(key.data)
                    elif key.data == "stdout":
                        stdout += chunk
                        overflowed = len(stdout) > max_stdout
                    else:
                        stderr += chunk
                        del stderr[:-STDERR_KEEP_BYTES]
    finally:
        selector.close()
        if exited is not None:
            os.close(exited)
        if process.returncode is None:
            end_tree(process, task_id, since)
            process.wait()
    ended = timed_out or overflowed
    return Finished(None if ended else process.returncode, bytes(stdout[:max_stdout + 1]), bytes(stderr),
                    timed_out=timed_out, overflowed=overflowed)


def _close(selector: selectors.BaseSelector, pipe) -> None:
    if not pipe.closed:
        selector.unregister(pipe)
        pipe.close()


def _feed(selector: selectors.BaseSelector, pipe, view: memoryview, written: int) -> int:
    """Write what the pipe takes now; close it when all is written or the agent stopped reading."""
    if pipe.closed:  # the agent exited in the same wake-up
        return written
    try:
        written += os.write(pipe.fileno(), view[written:written + CHUNK])
    except BlockingIOError:
        return written
    except BrokenPipeError:
        written = len(view)
    if written >= len(view):
        _close(selector, pipe)
    return written


def end_tree(process: subprocess.Popen, task_id: str, since: float) -> list[int]:
    """SIGKILL the agent's process group and every process carrying its task id; the pids signalled.

    Called while the agent is not yet reaped: its pid, and so its process group, cannot belong to
    anyone else. Descendants that left the session are found by their environment, passes repeated
    until one finds none (a process may fork while its tree is ended).
    """
    signalled = []
    try:
        os.killpg(process.pid, signal.SIGKILL)
        signalled.append(process.pid)
    except (ProcessLookupError, PermissionError):
        pass
    for _ in range(10):
        found = tagged(task_id, since)
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                signalled.append(pid)
            except ProcessLookupError:
                pass
        if not found:
            break
    return signalled


def tagged(task_id: str, since: float) -> list[int]:
    """The live processes of this user that carry TDEV_TASK_ID=task_id and started after `since`.

    Read from /proc directly: a pass over every process's environment must stay cheap, since one runs
    after every agent call.
    """
    import psutil

    marker = f"{TASK_ENV}={task_id}".encode()
    uid, me = os.getuid(), os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            with open(f"/proc/{name}/environ", "rb") as handle:
                if marker not in handle.read().split(b"\0"):
                    continue
            process = psutil.Process(int(name))
            if process.status() != psutil.STATUS_ZOMBIE \
                    and process.create_time() >= since - START_TOLERANCE_SECONDS:
                found.append(process.pid)
        except (OSError, psutil.Error):
            continue
    return found
