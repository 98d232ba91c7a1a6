"""Command agents, patches and git checks for the end-to-end evolution tests.

An agent here is a small Python script that answers one fixed reply document of DESIGN §5 (kept in
a JSON file beside it, so that no quoting is involved); it can keep the input it was given and run
a few lines before it answers. The patches are unified diffs of the `git_repo` fixture's package.
"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path

from lib.quality import patterns
from lib.store import open_store
from tests.conftest import PHASE_AGENTS, SAMPLE_MODULE, git

TARGET = "packages/agents"
SAMPLE = f"{TARGET}/sample.py"
#: The fixture's sample module with a docstring on the module, the function, the class and the method.
DOCUMENTED = '''"""Small helpers."""
import os, sys


def add(a, b):
    """The sum of a and b."""
    return a+b


class Greeter:
    """Says hello."""

    def greet(self, name):
        """A greeting for name."""
        if name == None:
            return "hello"
        return "hello " + name
'''


def diff(path: str, old: str | None, new: str) -> str:
    """A unified diff in git's format (a/ and b/ prefixes); old None creates the file."""
    before = [] if old is None else old.splitlines(keepends=True)
    return "".join(difflib.unified_diff(before, new.splitlines(keepends=True),
                                        "/dev/null" if old is None else f"a/{path}", f"b/{path}"))


PHASES = list(PHASE_AGENTS)
#: The patch that documents the sample module.
DOCSTRINGS = diff(SAMPLE, SAMPLE_MODULE, DOCUMENTED)
#: A test module of the sample package: two tests that pass on the base.
TEST_FILE = f"{TARGET}/test_sample.py"
TESTS = ('"""Tests of the sample module."""\nfrom packages.agents.sample import add\n\n\n'
         'def test_add():\n    """Two and two."""\n    assert add(2, 2) == 4\n\n\n'
         'def test_add_zero():\n    """Zero changes nothing."""\n    assert add(3, 0) == 3\n')
TEST_ID = "packages.agents.test_sample::test_add"
#: Documents the module and breaks add(): a test that passed on the base fails.
BROKEN = diff(SAMPLE, SAMPLE_MODULE, DOCUMENTED.replace("return a+b", "return a-b"))
#: A valid reply output per phase, with only the keys §5 requires.
MINIMAL = {"research": {"summary": "sample.py has no docstrings"}, "plan": {"files": [SAMPLE]},
           "implement": {"patch": DOCSTRINGS}, "evaluate": {"verdict": "pass"}}


def reply_agent(base: Path, phase: str, output, *, status: str = "ok", cost_usd: float = 0.0, tokens=0,
                error: str | None = None, keep_input: Path | None = None, before: str = "") -> list[str]:
    """The argv of a command agent for phase that answers {status, output, cost_usd, tokens, error}.

    keep_input: where it writes the input document it read; before: Python lines it runs first.
    """
    reply = base / f"agent_{phase}.reply.json"
    reply.write_text(json.dumps({"status": status, "output": output, "cost_usd": cost_usd, "tokens": tokens,
                                 "error": error}))
    script = base / f"agent_{phase}.py"
    script.write_text("\n".join([
        "import json, os, subprocess, sys",
        "payload = sys.stdin.read()",
        f"open({str(keep_input)!r}, 'w').write(payload)" if keep_input else "",
        before,
        f"sys.stdout.write(open({str(reply)!r}).read())",
    ]) + "\n")
    return [sys.executable, str(script)]


def evolve(tdev, repo: Path, *args: str, env: dict | None = None):
    """run_evolution.py --monitor on the repository's package, as an operator runs it."""
    return tdev.run("run_evolution.py", "--target", str(repo / TARGET), "--monitor", *args, env=env)


def the_evolution() -> tuple[dict, list[dict]]:
    """The one evolution of the installation and its tasks, oldest first."""
    store = open_store()
    try:
        [record] = store.list_evolutions()
        return record, store.list_tasks(record["id"])
    finally:
        store.close()


def auto_branches(repo: Path) -> list[str]:
    """The evolution branches (tdev/auto/...) a repository holds, bare or not."""
    return git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/tdev/auto/").split()


def origin_of(repo: Path) -> Path:
    """The bare origin the `git_repo` fixture made beside the repository."""
    return repo.parent / "origin.git"


def assert_nothing_published(repo: Path, base_sha: str) -> None:
    """No evolution branch here or on origin, and the operator's checkout as it was."""
    assert auto_branches(repo) == [] and auto_branches(origin_of(repo)) == []
    assert git(repo, "rev-parse", "HEAD") == base_sha
    assert git(repo, "status", "--porcelain") == ""


def add_prevention_pattern(pattern_id: str, files: list[str]) -> None:
    """A prevention pattern of any change kind naming files, stored as add_prevention_pattern.py stores one."""
    store = open_store(create=True)
    try:
        patterns.save(store, {"id": pattern_id, "kind": "prevention", "source": "8", "hits": 0,
                              "created_at": "2024-01-01T00:00:00Z",
                              "signature": {"files": files, "change_kind": patterns.ANY,
                                            "message": "the change broke production (reverted by #8)"}})
    finally:
        store.close()


def attempts_agent(base: Path, phase: str, outputs: list, kept: Path) -> list[str]:
    """The argv of a command agent that answers outputs[attempt - 1] (the last one for later attempts) and
    keeps each input it reads as kept/input-<cycle>-<attempt>.json."""
    kept.mkdir(parents=True, exist_ok=True)
    replies = base / f"agent_{phase}.replies.json"
    replies.write_text(json.dumps([{"status": "ok", "output": output, "cost_usd": 0, "tokens": 0}
                                   for output in outputs]))
    script = base / f"agent_{phase}.py"
    script.write_text("\n".join([
        "import json, sys",
        "payload = sys.stdin.read()",
        "given = json.loads(payload)",
        f"open(f{str(kept)!r} + f\"/input-{{given['cycle']}}-{{given['attempt']}}.json\", 'w').write(payload)",
        f"replies = json.load(open({str(replies)!r}))",
        "sys.stdout.write(json.dumps(replies[min(given['attempt'], len(replies)) - 1]))",
    ]) + "\n")
    return [sys.executable, str(script)]


def kept_inputs(kept: Path) -> dict[tuple[int, int], dict]:
    """The inputs an attempts_agent kept, by (cycle, attempt)."""
    found = {}
    for path in kept.glob("input-*.json"):
        _, cycle, attempt = path.stem.split("-")
        found[int(cycle), int(attempt)] = json.loads(path.read_text())
    return found


def commit_file(repo: Path, path: str, text: str) -> str:
    """Add a file to the operator's repository; the new HEAD is the evolution's base."""
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"add {path}")
    return git(repo, "rev-parse", "HEAD")


def candidate_agent(base: Path, name: str, replies: dict, kept: Path, together: int = 0) -> list[str]:
    """The argv of a command implement agent for candidates (DESIGN §5 Candidates): it answers
    replies[str(candidate)] (else replies["*"]) and keeps each input as kept/input-<cycle>-<attempt>-c<k>.json.

    together: when > 0, the agent first writes kept/started-<cycle>-<attempt>-c<k> and waits (a bound for a hung
    test, not a pace) until that many candidates of its attempt have started, noting in kept/alone-... if they
    never did: candidates that run at once all see each other."""
    kept.mkdir(parents=True, exist_ok=True)
    answers = base / f"agent_{name}.replies.json"
    answers.write_text(json.dumps({key: {"status": "ok", "output": output, "cost_usd": 0.01, "tokens": 0}
                                   for key, output in replies.items()}))
    script = base / f"agent_{name}.py"
    script.write_text("\n".join([
        "import json, pathlib, sys, time",
        "payload = sys.stdin.read()",
        "given = json.loads(payload)",
        f"kept = pathlib.Path({str(kept)!r})",
        "mark = f\"{given['cycle']}-{given['attempt']}-c{given['candidate']}\"",
        "(kept / f'input-{mark}.json').write_text(payload)",
        f"together = {together}",
        "if together:",
        "    (kept / f'started-{mark}').write_text(str(given['worktree']))",
        "    deadline = time.monotonic() + 120",
        "    pattern = f\"started-{given['cycle']}-{given['attempt']}-c*\"",
        "    while len(list(kept.glob(pattern))) < together and time.monotonic() < deadline:",
        "        time.sleep(0.05)",
        "    if len(list(kept.glob(pattern))) < together:",
        "        (kept / f'alone-{mark}').write_text('')",
        f"replies = json.load(open({str(answers)!r}))",
        "sys.stdout.write(json.dumps(replies.get(str(given['candidate'])) or replies['*']))",
    ]) + "\n")
    return [sys.executable, str(script)]


def kept_candidate_inputs(kept: Path) -> dict[tuple[int, int, int], dict]:
    """The inputs a candidate_agent kept, by (cycle, attempt, candidate)."""
    found = {}
    for path in kept.glob("input-*.json"):
        _, cycle, attempt, candidate = path.stem.split("-")
        found[int(cycle), int(attempt), int(candidate.removeprefix("c"))] = json.loads(path.read_text())
    return found


def use_implement_agents(tdev, implement: dict[str, list[str]], candidates: int) -> None:
    """evolution.candidates in settings.yaml, and agents.yaml with the local agents for the other phases and
    one command agent per name for implement (several only with candidates > 1)."""
    tdev.write_config("settings", f"evolution:\n  candidates: {candidates}\n")
    lines = ["agents:"]
    for phase, name in PHASE_AGENTS.items():
        if phase != "implement":
            lines.append(f"  - {json.dumps({'name': name, 'phase': phase, 'runtime': 'local'})}")
    for name, argv in implement.items():
        lines.append(f"  - {json.dumps({'name': name, 'phase': 'implement', 'runtime': 'command', 'command': argv})}")
    tdev.write_config("agents", "\n".join(lines) + "\n")
