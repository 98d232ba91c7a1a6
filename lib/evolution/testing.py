"""The target's tests as the runner runs them (DESIGN §5): found before the patch, run once on the base
(the baseline, cached per base commit), then after each attempt, blaming only what the attempt broke.

Test ids come from pytest's junit XML (written into the evolution's tmp folder), as
`<classname>::<name>`. A command that is not pytest is judged by its exit code only.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lib import config, fsutil, paths
from lib.adapters import gitops
from lib.procs import end_tree
from lib.quality import measure

NOT_RUN, PASSED, FAILED = "not run", "passed", "failed"
TAIL_BYTES = 8000
#: A line that adds a skip or an expected failure to a test (pytest or unittest).
SKIP_MARKER = re.compile(r"(pytest\.mark\.(skip|skipif|xfail)\b|pytest\.(skip|xfail|importorskip)\(|"
                         r"unittest\.(skip|skipIf|skipUnless|expectedFailure)\b|@(skip|skipIf|skipUnless|"
                         r"expectedFailure)\b)")
TEST_FUNCTION = re.compile(r"^\s*(?:async\s+)?def\s+(test\w*)\s*\(", re.MULTILINE)
#: What a test command prints when it cannot start at all (DESIGN §5: test-env, not a failed attempt).
NO_PYTEST = re.compile(r"No module named pytest")


class TestEnvError(Exception):
    """The test command cannot start: `test-env: <what> (fix: ...)`."""

    def __init__(self, what: str, fix: str):
        super().__init__(f"test-env: {what} (fix: {fix})")


@dataclass
class TestPlan:
    """The test command found before the patch: argv (None: no command), the test paths it runs."""

    argv: list[str] | None
    paths: list[str]
    pytest: bool
    why_none: str = ""

    @property
    def shown(self) -> str | None:
        return shlex.join(self.argv) if self.argv else None


def is_test_file(name: str) -> bool:
    base = PurePosixPath(name).name
    return base.endswith(".py") and (base.startswith("test_") or base.endswith("_test.py"))


def has_tests(folder: Path) -> bool:
    """test_*.py or *_test.py anywhere under folder (or folder itself such a file)."""
    if folder.is_file():
        return is_test_file(folder.name)
    return any(is_test_file(path.name) for path in measure.python_files(folder))


def configured_testpaths(root: Path) -> list[str]:
    """pytest's `testpaths` from the repository's configuration, in pytest's own order of precedence."""
    for name, section in (("pytest.ini", "pytest"), ("pyproject.toml", None), ("tox.ini", "pytest"),
                          ("setup.cfg", "tool:pytest")):
        path = root / name
        if not path.is_file():
            continue
        if section is None:
            try:
                options = tomllib.loads(path.read_text()).get("tool", {}).get("pytest", {}).get("ini_options", {})
            except (tomllib.TOMLDecodeError, UnicodeDecodeError):
                continue
            found = options.get("testpaths")
            if found:
                return [found] if isinstance(found, str) else [str(item) for item in found]
            continue
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path)
        except configparser.Error:
            continue
        if parser.has_option(section, "testpaths"):
            return parser.get(section, "testpaths").split()
        if name == "pytest.ini":
            return []  # pytest.ini wins even without testpaths
    return []


def test_paths(root: Path, target: str) -> list[str]:
    """The target's tests (DESIGN §5): inside the target, else testpaths, else a top-level tests/ or test/."""
    if has_tests(root / target):
        return [target]
    configured = [p for p in configured_testpaths(root) if (root / p).exists() and has_tests(root / p)]
    if configured:
        return configured
    return [name for name in ("tests", "test") if (root / name).is_dir() and has_tests(root / name)][:1]


def plan(root: Path, target: str) -> TestPlan:
    """EVOLUTION_TEST_COMMAND, else settings evolution.test_command; `auto` runs pytest on the tests
    found for the target, `none` (or no tests found) runs nothing."""
    raw = os.environ.get("EVOLUTION_TEST_COMMAND", "").strip() or config.settings()["evolution"]["test_command"]
    if isinstance(raw, list):
        return TestPlan([str(part) for part in raw], [], False)
    if raw is None or raw.strip().lower() == "none":
        return TestPlan(None, [], False, "the test command is none")
    if raw.strip().lower() != "auto":
        return TestPlan(shlex.split(raw), [], False)
    found = test_paths(root, target)
    if not found:
        return TestPlan(None, [], False, "no test command for this target")
    return TestPlan([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", *found], found, True)


def can_start(test_plan: TestPlan) -> str | None:
    """Why the command cannot start (a test-env line), or None: what pre_evolution_check reports CRITICAL."""
    if not test_plan.argv:
        return None
    program = test_plan.argv[0]
    if not (shutil.which(program) or Path(program).is_file()):
        return str(TestEnvError(f"cannot find the test command's program {program}",
                                "install it, or set EVOLUTION_TEST_COMMAND / evolution.test_command"))
    if test_plan.pytest:
        probe = subprocess.run([program, "-c", "import pytest"], capture_output=True, text=True, timeout=120)
        if probe.returncode != 0:
            return str(TestEnvError(f"No module named pytest for {program}", "pip install -r requirements.txt"))
    return None


def run(test_plan: TestPlan, root: Path, junit: Path) -> dict:
    """{status, command, summary, exit_code, passed: [ids], failed: [ids], ran, output_tail}; raises
    TestEnvError when the command cannot start."""
    if not test_plan.argv:
        return {"status": NOT_RUN, "command": None, "summary": test_plan.why_none, "exit_code": None,
                "passed": [], "failed": [], "ran": 0, "output_tail": ""}
    argv = test_plan.argv + ([f"--junitxml={junit}"] if test_plan.pytest else [])
    junit.unlink(missing_ok=True)
    timeout = float(config.settings()["evolution"]["test_timeout_seconds"])
    try:
        process = subprocess.Popen(argv, cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace")
    except OSError as failure:
        raise TestEnvError(f"cannot start {argv[0]}: {failure.strerror or failure}",
                           "install it, or set EVOLUTION_TEST_COMMAND / evolution.test_command") from None
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:  # the suite's own children (servers, workers) end with it
        end_tree(process)
        output, _ = process.communicate()
        return {"status": FAILED, "command": test_plan.shown, "summary": f"timed out after {timeout:g}s",
                "exit_code": None, "passed": [], "failed": [], "ran": 0, "output_tail": tail(output)}
    if process.returncode != 0 and NO_PYTEST.search(output) and test_plan.pytest:
        raise TestEnvError(f"No module named pytest for {argv[0]}", "pip install -r requirements.txt")
    passed, failed = read_junit(junit) if test_plan.pytest else ([], [])
    last = [line for line in output.strip().splitlines() if line.strip()][-1:] or [""]
    return {"status": PASSED if process.returncode == 0 else FAILED, "command": test_plan.shown,
            "summary": f"exit {process.returncode}: {last[0][:200]}", "exit_code": process.returncode,
            "passed": passed, "failed": failed, "ran": len(passed) + len(failed), "output_tail": tail(output)}


def tail(text: str, limit: int = TAIL_BYTES) -> str:
    data = text.encode("utf-8", "replace")
    return text if len(data) <= limit else "[...cut]\n" + data[-limit:].decode("utf-8", "ignore")


def read_junit(path: Path) -> tuple[list[str], list[str]]:
    """(passed ids, failed ids) from pytest's junit XML; skipped tests are neither. Unreadable: ([], [])."""
    try:
        tree = ElementTree.parse(path)
    except (OSError, ElementTree.ParseError):
        return [], []
    passed, failed = [], []
    for case in tree.iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        kinds = {child.tag for child in case}
        if kinds & {"failure", "error"}:
            failed.append(test_id)
        elif "skipped" not in kinds:
            passed.append(test_id)
    return passed, failed


def baseline(test_plan: TestPlan, root: Path, base_sha: str, junit: Path) -> dict:
    """The run on the base commit, cached per base sha and command in the history folder (DESIGN §5)."""
    if not test_plan.argv:
        return run(test_plan, root, junit)
    key = hashlib.sha256(f"{test_plan.shown}\n{os.environ.get('EVOLUTION_TEST_COMMAND', '')}".encode()).hexdigest()
    cached = paths.history_dir() / "test_baselines" / f"{base_sha}-{key[:16]}.json"
    try:
        return json.loads(cached.read_text())
    except (OSError, ValueError):
        pass
    result = run(test_plan, root, junit)
    if result["exit_code"] is not None:  # a timed-out run is not a baseline to keep
        fsutil.atomic_write(cached, json.dumps(result))
    return result


def agent_view(test_plan: TestPlan, base: dict | None) -> dict | None:
    """`tests` of the agent input: {command, paths, baseline: {passed, failed, failing}}."""
    if not test_plan.argv or base is None:
        return None
    return {"command": test_plan.shown, "paths": test_plan.paths,
            "baseline": {"passed": len(base["passed"]) if test_plan.pytest else int(base["exit_code"] == 0),
                         "failed": len(base["failed"]) if test_plan.pytest else int(base["exit_code"] != 0),
                         "failing": base["failed"]}}


def blame(base: dict, after: dict) -> tuple[bool, list[str]]:
    """(whether the attempt broke the tests, the test ids it broke): failing now, not failing on the base.
    Without test ids (a command that is not pytest, a timeout), a failing run where the base passed."""
    if after["status"] == NOT_RUN:
        return False, []
    if after["failed"] or after["passed"]:
        known = set(base["failed"])
        broken = [test_id for test_id in after["failed"] if test_id not in known]
        return bool(broken), broken
    return after["exit_code"] != 0 and base["exit_code"] == 0, []


def weakened(root: Path, entries: list[dict], base: dict | None, after: dict | None) -> list[str]:
    """Why the change weakens the tests (DESIGN §5): a test file deleted or renamed, a test function
    removed, a skip or xfail added, or fewer tests run than on the base."""
    found = []
    for entry in entries:
        name = entry["path"]
        if not is_test_file(name):
            continue
        if entry["status"] == "D":
            found.append(f"deletes or renames the test file {name}")
            continue
        old = gitops.git(root, "show", f"HEAD:{name}", strip=False) if entry["status"] == "M" else ""
        new = (root / name).read_text(errors="replace")
        removed = sorted(set(TEST_FUNCTION.findall(old)) - set(TEST_FUNCTION.findall(new)))
        if removed:
            found.append(f"removes test function(s) {', '.join(removed[:5])} from {name}")
        if len(SKIP_MARKER.findall(new)) > len(SKIP_MARKER.findall(old)):
            found.append(f"adds a skip or xfail marker in {name}")
    if base and after and base["exit_code"] is not None and after["ran"] < base["ran"]:
        found.append(f"{after['ran']} tests ran, fewer than the {base['ran']} on the base")
    return found
