"""lib/evolution/testing.py: where the target's tests are found, how a run is read and what is blamed or
counted as weakening the tests (DESIGN §5). Real files, real git, real pytest runs where it matters."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lib.evolution import testing
from tests.conftest import git

PASSING = "def test_one():\n    assert True\n\n\ndef test_two():\n    assert True\n"


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize("files, found", [
    ({"pkg/m.py": "", "pkg/test_m.py": PASSING, "tests/test_x.py": PASSING}, ["pkg"]),
    ({"pkg/m.py": "", "tests/test_x.py": PASSING, "test/test_y.py": PASSING}, ["tests"]),
    ({"pkg/m.py": "", "test/test_y.py": PASSING}, ["test"]),
    ({"pkg/m.py": "", "checks/test_c.py": PASSING, "tests/test_x.py": PASSING,
      "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["checks"]\n'}, ["checks"]),
    ({"pkg/m.py": "", "checks/test_c.py": PASSING, "setup.cfg": "[tool:pytest]\ntestpaths = checks\n"}, ["checks"]),
    ({"pkg/m.py": "", "checks/test_c.py": PASSING, "tox.ini": "[pytest]\ntestpaths = checks\n"}, ["checks"]),
    ({"pkg/m.py": "", "checks/test_c.py": PASSING, "pytest.ini": "[pytest]\ntestpaths = checks other\n"},
     ["checks"]),
    ({"pkg/m.py": ""}, []),
], ids=["inside", "tests-before-test", "test", "pyproject", "setup.cfg", "tox.ini", "pytest.ini-missing-path",
        "none"])
def test_tests_are_found_inside_then_testpaths_then_top_level(tmp_path, files, found):
    assert testing.test_paths(tree(tmp_path, files), "pkg") == found


def test_auto_none_and_an_explicit_command(tmp_path, tdev, monkeypatch):
    tree(tmp_path, {"pkg/m.py": "", "tests/test_x.py": PASSING})
    auto = testing.plan(tmp_path, "pkg")
    assert auto.argv[:4] == [sys.executable, "-m", "pytest", "-q"] and auto.argv[-1] == "tests" and auto.pytest
    monkeypatch.setenv("EVOLUTION_TEST_COMMAND", "none")
    assert testing.plan(tmp_path, "pkg").argv is None
    monkeypatch.setenv("EVOLUTION_TEST_COMMAND", "make check")
    explicit = testing.plan(tmp_path, "pkg")
    assert explicit.argv == ["make", "check"] and not explicit.pytest


def test_a_run_reads_test_ids_from_junit_and_blames_only_new_failures(tmp_path, tdev):
    root = tree(tmp_path, {"tests/test_x.py": PASSING + "\n\ndef test_old_failure():\n    assert False\n"})
    plan = testing.TestPlan([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], ["tests"], True)
    base = testing.run(plan, root, tmp_path / "base.xml")
    assert base["exit_code"] == 1 and base["failed"] == ["tests.test_x::test_old_failure"]
    assert base["passed"] == ["tests.test_x::test_one", "tests.test_x::test_two"] and base["ran"] == 3
    assert testing.blame(base, base) == (False, [])  # a failure already on the base is reported, not blamed
    (root / "tests/test_x.py").write_text((root / "tests/test_x.py").read_text().replace(
        "def test_two():\n    assert True", "def test_two():\n    assert 1 == 2"))
    after = testing.run(plan, root, tmp_path / "after.xml")
    assert testing.blame(base, after) == (True, ["tests.test_x::test_two"])
    assert "1 == 2" in after["output_tail"]


def test_a_command_without_test_ids_is_judged_by_its_exit_code():
    base = {"exit_code": 0, "passed": [], "failed": []}
    after = {"status": "failed", "exit_code": 2, "passed": [], "failed": []}
    assert testing.blame(base, after) == (True, [])
    assert testing.blame({**base, "exit_code": 2}, after) == (False, [])


def test_a_command_that_cannot_start_is_test_env(tmp_path, tdev):
    plan = testing.TestPlan(["/no/such/python", "-m", "pytest"], [], True)
    with pytest.raises(testing.TestEnvError, match=r"^test-env: cannot start /no/such/python: .*\(fix: install it"):
        testing.run(plan, tmp_path, tmp_path / "j.xml")
    assert testing.can_start(plan).startswith("test-env: cannot find the test command's program /no/such/python")


def test_no_pytest_is_test_env_naming_the_install(tmp_path, tdev):
    """An interpreter without pytest (here: python -I -S cannot import it) is not a failed attempt."""
    fake = tmp_path / "python-without-pytest"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} -I -S \"$@\"\n")
    fake.chmod(0o755)
    plan = testing.TestPlan([str(fake), "-m", "pytest", "-q"], ["tests"], True)
    assert testing.can_start(plan) == (f"test-env: No module named pytest for {fake} "
                                       "(fix: pip install -r requirements.txt)")
    with pytest.raises(testing.TestEnvError, match="No module named pytest"):
        testing.run(plan, tmp_path, tmp_path / "j.xml")


def test_the_baseline_is_cached_per_base_commit(tmp_path, tdev):
    root = tree(tmp_path / "repo", {"tests/test_x.py": PASSING})
    plan = testing.TestPlan([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], ["tests"], True)
    first = testing.baseline(plan, root, "a" * 40, tmp_path / "1.xml")
    (root / "tests/test_x.py").write_text("def test_one():\n    assert False\n")  # would fail if it ran again
    assert testing.baseline(plan, root, "a" * 40, tmp_path / "2.xml") == first
    assert testing.baseline(plan, root, "b" * 40, tmp_path / "3.xml")["failed"] == ["tests.test_x::test_one"]
    assert testing.agent_view(plan, first) == {"command": plan.shown, "paths": ["tests"],
                                               "baseline": {"passed": 2, "failed": 0, "failing": []}}


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tree(tmp_path / "r", {"tests/test_x.py": PASSING, "tests/helpers.py": "X = 1\n"})
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "i")
    return root


def modified(path: str, status: str = "M") -> list[dict]:
    return [{"path": path, "status": status, "old_mode": "100644", "new_mode": "100644", "added": 1, "deleted": 1}]


@pytest.mark.parametrize("new, why", [
    ("def test_one():\n    assert True\n", "removes test function(s) test_two from tests/test_x.py"),
    ("import pytest\n\n\n@pytest.mark.skip\n" + PASSING, "adds a skip or xfail marker in tests/test_x.py"),
    (PASSING.replace("assert True\n\n\n", "pytest.xfail('later')\n\n\n"),
     "adds a skip or xfail marker in tests/test_x.py"),
    ("import unittest\n\n\n@unittest.skip('x')\n" + PASSING, "adds a skip or xfail marker in tests/test_x.py"),
], ids=["removed-function", "skip-mark", "xfail-call", "unittest-skip"])
def test_weakened_tests_are_named(repo, new, why):
    (repo / "tests/test_x.py").write_text(new)
    assert testing.weakened(repo, modified("tests/test_x.py"), None, None) == [why]


def test_deleted_tests_and_fewer_tests_run_are_weakening_but_helpers_and_new_tests_are_not(repo):
    assert testing.weakened(repo, modified("tests/test_x.py", "D"), None, None) == [
        "deletes or renames the test file tests/test_x.py"]
    assert testing.weakened(repo, modified("tests/helpers.py", "D"), None, None) == []
    (repo / "tests/test_x.py").write_text(PASSING + "\n\ndef test_three():\n    assert True\n")
    assert testing.weakened(repo, modified("tests/test_x.py"), None, None) == []
    assert testing.weakened(repo, [], {"exit_code": 0, "ran": 3}, {"ran": 2}) == [
        "2 tests ran, fewer than the 3 on the base"]
