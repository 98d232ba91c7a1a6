"""End to end (issue 16, items 4-7, 9, 10): agents that try to hang, flood or escape the runner, or leak.

Each test injects the fault with a command agent, as an agent in the field would, and shows that the
task ends (never left `running`), nothing is lost, hung, leaked or committed, and the error says why.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
import zstandard
from evolution_agents import MINIMAL, PHASES, SAMPLE, auto_branches, evolve, origin_of, reply_agent, the_evolution
from evolution_runs import wait_for

from lib import procs
from lib.store import open_store
from tests.conftest import PHASE_AGENTS, git

#: A bare AWS secret access key (the documentation's example shape), and a GitHub token.
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GH_TOKEN = "ghp_" + "Zq7" * 12


def command_agent(tdev, phase: str, body: str, others: dict | None = None) -> None:
    """phase's agent runs body (Python; `payload` holds its input); every other phase answers MINIMAL."""
    script = tdev.base / f"faulty_{phase}.py"
    script.write_text("import json, os, signal, subprocess, sys, time\npayload = json.load(sys.stdin)\n"
                      + textwrap.dedent(body))
    agents = {name: reply_agent(tdev.base, name, (others or {}).get(name, MINIMAL[name])) for name in PHASES
              if name != phase}
    tdev.use_agents({**agents, phase: [sys.executable, script]})


def failed_task(result, phase: str) -> dict:
    """The evolution failed in phase; its task ended failed (not running) and carries the error line."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    record, tasks = the_evolution()
    assert [t["phase"] for t in tasks] == PHASES[: PHASES.index(phase) + 1]
    assert record["status"] == "failed" and tasks[-1]["status"] == "failed"
    assert record["error"] == f"{phase} failed (task {tasks[-1]['id']}): {tasks[-1]['error']}"
    return tasks[-1]


def archive_texts(tdev) -> list[str]:
    backup = tdev.run("backup.py", "--daily", "--no-s3")
    assert backup.returncode == 0, backup.stderr
    texts = []
    for archive in tdev.backup_dir.rglob("*.tar.zst"):
        with open(archive, "rb") as handle:
            texts.append(zstandard.ZstdDecompressor().stream_reader(handle).read().decode("utf-8", "replace"))
    assert texts
    return texts


# ---- 4: process trees ----------------------------------------------------------------------------------

GRANDCHILD = """
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
open(os.environ["GRANDCHILD_PIDFILE"], "w").write(str(grandchild.pid))
"""


def test_an_agent_that_ignores_sigterm_and_leaves_a_grandchild_on_stdout_ends_at_the_timeout(tdev, git_repo):
    pidfile = tdev.base / "grandchild.pid"
    command_agent(tdev, "research", "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + GRANDCHILD
                  + "time.sleep(300)\n")
    result = evolve(tdev, git_repo, "--dry-run", env={"TIMEOUT_SECONDS": "3", "GRANDCHILD_PIDFILE": str(pidfile)})
    task = failed_task(result, "research")
    assert task["error"].startswith("timeout: ") and task["error"].endswith("did not answer within 3s")
    assert task["duration_s"] < 3 + 30, "the phase outlived its timeout"  # a bound far below the 300 s sleep
    grandchild = int(pidfile.read_text())
    wait_for(lambda: not procs.alive(grandchild))  # it left the session; its TDEV_TASK_ID found it


def test_an_agent_that_answers_at_once_and_leaves_a_grandchild_on_stdout_is_done(tdev, git_repo):
    pidfile = tdev.base / "grandchild.pid"
    command_agent(tdev, "research", GRANDCHILD + "print(json.dumps({'status': 'ok', 'output': "
                                                 "{'summary': 'fine'}}), flush=True)\n")
    result = evolve(tdev, git_repo, "--dry-run", "--focus", "docs",
                    env={"TIMEOUT_SECONDS": "600", "GRANDCHILD_PIDFILE": str(pidfile)})
    assert result.returncode == 0, result.stdout + result.stderr
    record, tasks = the_evolution()
    assert record["status"] == "succeeded"
    assert tasks[0]["status"] == "succeeded" and tasks[0]["error"] is None
    assert tasks[0]["duration_s"] < 600 / 2, "the research phase waited on its grandchild"
    wait_for(lambda: not procs.alive(int(pidfile.read_text())))


def test_an_agent_runs_in_its_own_session_with_its_task_id(tdev, git_repo):
    seen = tdev.base / "seen.json"
    command_agent(tdev, "research", f"""
        json.dump({{"leader": os.getsid(0) == os.getpid(), "task": os.environ.get("TDEV_TASK_ID")}},
                  open({str(seen)!r}, "w"))
        print(json.dumps({{"status": "ok", "output": {{"summary": "fine"}}}}))
    """)
    assert evolve(tdev, git_repo, "--dry-run", "--focus", "docs").returncode == 0
    _, tasks = the_evolution()
    assert json.loads(seen.read_text()) == {"leader": True, "task": tasks[0]["id"]}


# ---- 5: output bounds ----------------------------------------------------------------------------------

def test_a_flood_on_stdout_is_bad_output_and_stops_at_the_bound(tdev, git_repo):
    tdev.write_config("settings", "evolution:\n  max_output_bytes: 100000\n")
    command_agent(tdev, "research", "while True:\n    sys.stdout.write('x' * 65536)\n")
    result = evolve(tdev, git_repo, "--dry-run", env={"TIMEOUT_SECONDS": "600"})
    task = failed_task(result, "research")
    assert task["error"].startswith("bad-output: ")
    assert task["error"].endswith("the reply is over evolution.max_output_bytes (100000 bytes)")
    record, _ = the_evolution()
    artifacts = list((tdev.history / record["id"] / "tasks").glob("*.json"))
    assert artifacts and all(path.stat().st_size < 100000 for path in artifacts)


def test_a_large_valid_reply_is_stored_once_not_in_every_later_tasks_artifact(tdev, git_repo):
    outputs = {"research": {"summary": "fine", "notes": "n" * 400_000}}
    tdev.use_agents({name: reply_agent(tdev.base, name, outputs.get(name, MINIMAL[name])) for name in PHASES})
    assert evolve(tdev, git_repo, "--dry-run", "--focus", "docs").returncode == 0
    record, tasks = the_evolution()
    sizes = {task["phase"]: (tdev.history / record["id"] / "tasks" / f"{task['id']}.json").stat().st_size
             for task in tasks}
    assert sizes["research"] > 400_000
    assert all(sizes[phase] < 100_000 for phase in PHASES[1:]), sizes
    planned = json.loads((tdev.history / record["id"] / "tasks" / f"{tasks[1]['id']}.json").read_text())
    assert planned["input"]["context"]["research"]["omitted"].endswith("the whole output is in the research task's "
                                                                       "artifact")


@pytest.mark.parametrize("stdout, what", [
    ('b\'{"status": "ok", "output": {"summary": "caf\\xe9"}}\'', "the reply is not valid UTF-8 (byte "),
    ("('[' * 100000 + ']' * 100000).encode()", "the reply is nested deeper than 100 levels"),
    ("json.dumps({'status': 'ok', 'output': {'summary': 's', 'deep': json.loads('[' * 150 + ']' * 150)}}).encode()",
     "the reply is nested deeper than 100 levels"),
], ids=["invalid-utf-8", "100k-deep", "150-deep-inside-output"])
def test_undecodable_or_too_deep_stdout_is_bad_output(tdev, git_repo, stdout, what):
    command_agent(tdev, "research", f"sys.stdout.buffer.write({stdout})\n")
    task = failed_task(evolve(tdev, git_repo, "--dry-run"), "research")
    assert task["error"].startswith("bad-output: ") and what in task["error"], task["error"]


def test_invalid_utf8_on_stderr_is_replaced_and_the_answer_kept(tdev, git_repo):
    command_agent(tdev, "research", """
        sys.stderr.buffer.write(b"progress \\xff\\xfe done\\n")
        print(json.dumps({"status": "ok", "output": {"summary": "fine"}}))
    """)
    assert evolve(tdev, git_repo, "--dry-run", "--focus", "docs").returncode == 0
    record, tasks = the_evolution()
    assert tasks[0]["status"] == "succeeded"
    artifact = json.loads((tdev.history / record["id"] / "tasks" / f"{tasks[0]['id']}.json").read_text())
    assert artifact["stderr_tail"] == ["progress \ufffd\ufffd done"]


# ---- 6: costs that are not numbers ---------------------------------------------------------------------

@pytest.mark.parametrize("cost, tokens", [
    ("NaN", "0"), ("Infinity", "0"), ("1e400", "0"), ("-0.5", "0"), ("0.1", "-3"), ("0.1", "1" + "0" * 30),
    ("0.1", '{"input": 5, "output": 1e400}'),
], ids=["nan", "infinity", "1e400", "negative", "negative-tokens", "huge-tokens", "float-tokens"])
def test_a_cost_or_token_count_that_is_not_a_finite_count_is_bad_output_and_never_recorded(tdev, git_repo, cost,
                                                                                            tokens):
    command_agent(tdev, "research", f"""
        print('{{"status": "ok", "output": {{"summary": "s"}}, "cost_usd": {cost}, "tokens": {tokens}}}')
    """)
    task = failed_task(evolve(tdev, git_repo, "--dry-run"), "research")
    what = "cost_usd must be a finite number >= 0" if tokens == "0" else "tokens must be a whole number"
    assert task["error"].startswith(f"bad-output: {PHASE_AGENTS['research']}: {what}"), task["error"]
    record, _ = the_evolution()
    paid = 0 if tokens == "0" else 0.1  # a valid cost beside bad tokens was still paid, and counts
    assert task["cost_usd"] == paid and record["cost_usd"] == paid
    assert (task["tokens_in"], task["tokens_out"]) in ((0, 0), (None, None))
    history = tdev.run("show_evolution_history.py", "--json")
    assert history.returncode == 0, history.stderr
    assert "NaN" not in history.stdout and "Infinity" not in history.stdout
    json.loads(history.stdout, parse_constant=lambda name: pytest.fail(f"--json printed {name}"))


# ---- 7: escapes ------------------------------------------------------------------------------------------

def test_an_agent_that_changes_the_operators_checkout_and_hooks_has_escaped(tdev, git_repo, github):
    base = git(git_repo, "rev-parse", "HEAD")
    fired = tdev.base / "hook-fired"
    hook = git_repo / ".git" / "hooks" / "post-commit"
    command_agent(tdev, "implement", f"""
        open({str(git_repo / SAMPLE)!r}, "a").write("# written by the agent\\n")
        open({str(hook)!r}, "w").write("#!/bin/sh\\ntouch {fired}\\n")
        os.chmod({str(hook)!r}, 0o755)
        print(json.dumps({{"status": "ok", "output": {json.dumps(MINIMAL["implement"])}}}))
    """)
    task = failed_task(evolve(tdev, git_repo, "--focus", "docs"), "implement")
    assert task["error"] == (f"escaped: {PHASE_AGENTS['implement']} changed .git/hooks/post-commit outside its "
                             "worktree (and 1 more)")
    assert auto_branches(git_repo) == [] and auto_branches(origin_of(git_repo)) == []
    assert git(git_repo, "rev-parse", "HEAD") == base and not fired.exists()  # nothing committed, no hook ran
    record, _ = the_evolution()
    assert record["pr_number"] is None
    shown = tdev.run("show_failure.py", "--id", task["id"])
    assert "changed your checkout or its git settings outside its worktree" in shown.stdout, shown.stdout


def test_an_agent_that_changes_the_git_config_has_escaped_even_in_a_dry_run(tdev, git_repo):
    command_agent(tdev, "research", f"""
        subprocess.run(["git", "config", "core.hooksPath", "/tmp/elsewhere"], cwd={str(git_repo)!r}, check=True)
        print(json.dumps({{"status": "ok", "output": {{"summary": "fine"}}}}))
    """)
    task = failed_task(evolve(tdev, git_repo, "--dry-run"), "research")
    assert task["error"] == f"escaped: {PHASE_AGENTS['research']} changed .git/config outside its worktree"


def test_an_operators_checkout_dirty_before_the_run_is_no_escape(tdev, git_repo):
    (git_repo / "notes.txt").write_text("the operator's own work\n")
    (git_repo / SAMPLE).write_text((git_repo / SAMPLE).read_text() + "# operator's edit\n")
    tdev.use_agents({name: reply_agent(tdev.base, name, MINIMAL[name]) for name in PHASES})
    result = evolve(tdev, git_repo, "--dry-run", "--focus", "docs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert the_evolution()[0]["status"] == "succeeded"


# ---- 9, 10: leaks ----------------------------------------------------------------------------------------

def test_a_bare_aws_secret_key_on_stderr_reaches_no_tail_report_or_backup(tdev, git_repo):
    command_agent(tdev, "research", f"""
        sys.stderr.write("using aws secret access key {AWS_SECRET}\\n")
        sys.exit(3)
    """)
    task = failed_task(evolve(tdev, git_repo, "--dry-run"), "research")
    assert task["error"].startswith("exit-code: ") and "aws secret access key ***" in task["error"]
    record, _ = the_evolution()
    artifact = json.loads((tdev.history / record["id"] / "tasks" / f"{task['id']}.json").read_text())
    assert artifact["stderr_tail"] == ["using aws secret access key ***"]
    shown = tdev.run("show_failure.py", "--id", task["id"])
    assert shown.returncode in (0, 1) and "aws secret access key ***" in shown.stdout
    report = tdev.base / "report.md"
    written = tdev.run("generate_failure_report.py", "--id", task["id"], "--output", str(report))
    assert written.returncode == 0, written.stderr
    texts = [shown.stdout + shown.stderr, report.read_text(), *archive_texts(tdev)]
    assert not [text for text in texts if AWS_SECRET[:12] in text]


def test_a_token_in_an_agents_output_reaches_no_later_phase_artifact_or_backup(tdev, git_repo):
    seen = tdev.base / "plan-input.json"
    outputs = {"research": {"summary": "fine", "notes": f"authenticated with {GH_TOKEN}"}}
    agents = {name: reply_agent(tdev.base, name, outputs.get(name, MINIMAL[name]),
                                keep_input=seen if name == "plan" else None) for name in PHASES}
    tdev.use_agents(agents)
    assert evolve(tdev, git_repo, "--dry-run", "--focus", "docs").returncode == 0
    given = json.loads(seen.read_text())
    assert given["context"]["research"]["notes"] == "authenticated with ***"
    record, _ = the_evolution()
    stored = [path.read_text() for path in (tdev.history / record["id"] / "tasks").glob("*.json")]
    assert len(stored) == 4 and not [text for text in stored if GH_TOKEN[:12] in text]
    assert not [text for text in archive_texts(tdev) if GH_TOKEN[:12] in text]


def test_an_agents_own_error_message_is_stored_as_one_short_line(tdev, git_repo):
    command_agent(tdev, "research", "print(json.dumps({'status': 'error', 'error': 'boom ' * 200_000}))\n")
    task = failed_task(evolve(tdev, git_repo, "--dry-run"), "research")
    assert task["error"].startswith(f"agent-error: {PHASE_AGENTS['research']}: boom boom")
    assert len(task["error"]) == 2000 and task["error"].endswith("...")


def test_no_task_is_left_running_whatever_the_agent_returns(tdev, git_repo):
    command_agent(tdev, "research", "sys.stdout.buffer.write(b'\\xff' * 10)\n")
    failed_task(evolve(tdev, git_repo, "--dry-run"), "research")
    assert open_store().list_tasks(statuses=("running",)) == []
