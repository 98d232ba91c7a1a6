"""Unit tests of an agent's process tree (lib/agents/process_tree.py, DESIGN §5 "Agent processes")."""

from __future__ import annotations

import os
import sys

from evolution_runs import wait_for

from lib import procs
from lib.agents import process_tree

GRANDCHILD = ("import subprocess, sys; g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], "
              "start_new_session=True); print(g.pid, flush=True); ")


def run(code: str, tmp_path, *, stdin: bytes = b"", timeout: float = 60, max_stdout: int = 1000,
        task_id: str = "task-unit-1") -> process_tree.Finished:
    return process_tree.run([sys.executable, "-c", code], stdin=stdin, env=dict(os.environ), cwd=tmp_path,
                            timeout=timeout, task_id=task_id, max_stdout=max_stdout)


def test_an_agent_that_exits_is_done_though_a_grandchild_holds_stdout(tmp_path):
    finished = run(GRANDCHILD + "print('answer')", tmp_path, task_id="task-unit-exits")
    assert (finished.returncode, finished.timed_out, finished.overflowed) == (0, False, False)
    grandchild, answer = finished.stdout.decode().split()
    assert answer == "answer"
    wait_for(lambda: not procs.alive(int(grandchild)))
    assert process_tree.tagged("task-unit-exits", 0) == []


def test_at_the_timeout_the_whole_tree_ends_even_a_descendant_that_left_the_session(tmp_path):
    code = GRANDCHILD + "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"
    finished = run(code, tmp_path, timeout=2, task_id="task-unit-timeout")
    assert finished.timed_out and finished.returncode is None
    wait_for(lambda: not procs.alive(int(finished.stdout.split()[0])))
    assert process_tree.tagged("task-unit-timeout", 0) == []


def test_stdout_over_the_bound_ends_the_agent_and_keeps_no_more_than_the_bound(tmp_path):
    finished = run("import sys\nwhile True: sys.stdout.write('x' * 65536)", tmp_path, max_stdout=100000)
    assert finished.overflowed and finished.returncode is None
    assert len(finished.stdout) == 100001


def test_a_large_input_is_fed_whole_and_stderr_keeps_its_end(tmp_path):
    data = b"y" * (3 * 1024 * 1024)
    code = ("import sys; n = len(sys.stdin.buffer.read()); sys.stderr.write('e' * 200000 + 'END'); "
            "print(n)")
    finished = run(code, tmp_path, stdin=data)
    assert finished.returncode == 0 and int(finished.stdout) == len(data)
    assert finished.stderr.endswith(b"END") and len(finished.stderr) == process_tree.STDERR_KEEP_BYTES


def test_an_agent_that_never_reads_its_input_still_answers(tmp_path):
    finished = run("print('ok')", tmp_path, stdin=b"z" * (1024 * 1024))
    assert (finished.returncode, finished.stdout) == (0, b"ok\n")


def test_the_exit_code_is_kept(tmp_path):
    finished = run("import sys; sys.stderr.write('bad'); sys.exit(4)", tmp_path)
    assert (finished.returncode, finished.stderr, finished.timed_out) == (4, b"bad", False)


def test_only_processes_carrying_the_task_id_and_younger_than_the_agent_are_tagged(processes):
    mine = processes([sys.executable, "-c", "import time; time.sleep(300)"],
                     env={**os.environ, process_tree.TASK_ENV: "task-unit-tagged"})
    other = processes([sys.executable, "-c", "import time; time.sleep(300)"],
                      env={**os.environ, process_tree.TASK_ENV: "task-unit-other"})
    wait_for(lambda: mine.pid in process_tree.tagged("task-unit-tagged", 0))
    assert other.pid not in process_tree.tagged("task-unit-tagged", 0)
    assert process_tree.tagged("task-unit-tagged", since=procs_start(mine.pid) + 60) == []


def procs_start(pid: int) -> float:
    import psutil

    return psutil.Process(pid).create_time()
