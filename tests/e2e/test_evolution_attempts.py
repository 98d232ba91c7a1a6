"""End to end: attempts that repair themselves, edits that apply, tests a change cannot weaken (DESIGN §5).

run_evolution.py --monitor runs as an operator runs it, on a real repository with a bare origin and
the GitHub stand-in; the implement agent is a command agent answering one reply per attempt and
keeping every input it is given, so the tests read the feedback it received.
"""

from __future__ import annotations

import json
import os

import pytest
from evolution_agents import (
    BROKEN,
    DOCSTRINGS,
    DOCUMENTED,
    PHASES,
    SAMPLE,
    TARGET,
    TEST_FILE,
    TEST_ID,
    TESTS,
    assert_nothing_published,
    attempts_agent,
    auto_branches,
    commit_file,
    diff,
    evolve,
    kept_inputs,
    origin_of,
    the_evolution,
)

from tests.conftest import SAMPLE_MODULE, git


def implement(tdev, *outputs, **extra) -> dict:
    """A command implement agent answering outputs in turn (one per attempt); a passing evaluator."""
    kept = tdev.base / "kept"
    tdev.use_agents({"implement": attempts_agent(tdev.base, "implement", list(outputs), kept), **extra})
    return kept


def pull_of(github, record) -> dict:
    return github.pulls[record["pr_number"]]


# ---- repair -------------------------------------------------------------------------------------

def test_attempt_two_gets_the_failing_test_in_its_feedback_and_repairs_it(tdev, git_repo, github):
    base = commit_file(git_repo, TEST_FILE, TESTS)
    git(git_repo, "push", "-q", "origin", "main")
    kept = implement(tdev, {"patch": BROKEN, "summary": "documented"},
                     {"patch": DOCSTRINGS, "summary": "documented sample.py, add() restored"})
    result = evolve(tdev, git_repo, "--focus", "docs")
    assert result.returncode == 0, result.stdout + result.stderr
    record, tasks = the_evolution()
    assert (record["status"], record["error"], record["attempts"]) == ("succeeded", None, 2)
    assert [(t["phase"], t["attempt"], t["status"]) for t in tasks] == [
        ("research", 1, "succeeded"), ("plan", 1, "succeeded"), ("implement", 1, "succeeded"),
        ("implement", 2, "succeeded"), ("evaluate", 2, "succeeded")]  # evaluate saw only the passed change
    inputs = kept_inputs(kept)
    assert inputs[1, 1]["feedback"] == [] and inputs[1, 1]["attempt"] == 1
    assert inputs[1, 1]["tests"]["baseline"] == {"passed": 2, "failed": 0, "failing": []}
    assert inputs[1, 1]["tests"]["paths"] == [TARGET]
    [entry] = inputs[1, 2]["feedback"]
    assert entry["attempt"] == 1 and entry["error"].startswith(f"tests failed: {TEST_ID} (exit 1: ")
    assert entry["tests"]["failed"] == [TEST_ID] and entry["tests"]["exit_code"] == 1
    assert "FAILED" in entry["tests"]["output_tail"] and "1 failed, 1 passed" in entry["tests"]["output_tail"]
    assert "\n-    return a+b\n" in entry["patch"] and "\n+    return a-b\n" in entry["patch"]  # its diff
    assert entry["gates"] == []
    # the branch carries only the repair, committed once on the base
    [branch] = auto_branches(origin_of(git_repo))
    assert git(origin_of(git_repo), "rev-parse", f"{branch}~1") == base
    assert git(origin_of(git_repo), "show", f"{branch}:{SAMPLE}") + "\n" == DOCUMENTED
    body = pull_of(github, record)["body"]
    assert "Summary (from the agent): documented sample.py, add() restored" in body
    assert "Attempts: 2" in body and f"- attempt 1: refused: tests failed: {TEST_ID}" in body
    assert "- attempt 2: passed" in body
    history = tdev.run("show_evolution_history.py", "--json")
    assert history.returncode == 0, history.stderr


@pytest.mark.parametrize("refused, error", [
    ({"patch": diff(TEST_FILE, TESTS, TESTS.split("\n\n\ndef test_add_zero")[0] + "\n")},
     f"tests-weakened: removes test function(s) test_add_zero from {TEST_FILE}"),
    ({"patch": diff(TEST_FILE, TESTS, "import pytest\n" + TESTS.replace("def test_add():",
                                                                         "@pytest.mark.skip\ndef test_add():"))},
     f"tests-weakened: adds a skip or xfail marker in {TEST_FILE}"),
    ({"patch": f"diff --git a/{TEST_FILE} b/{TEST_FILE}\ndeleted file mode 100644\n"
               + diff(TEST_FILE, TESTS, "").replace(f"+++ b/{TEST_FILE}", "+++ /dev/null")},
     f"bad-patch: {TEST_FILE}: deletes a whole file"),
    ({"files": [{"path": TEST_FILE, "content": TESTS.replace("add(2, 2) == 4", "True")}]},
     None),
], ids=["removes-a-test", "skips-a-test", "deletes-the-test-file", "control-edits-a-test"])
def test_a_change_that_weakens_the_tests_is_refused_in_every_attempt(tdev, git_repo, github, refused, error):
    base = commit_file(git_repo, TEST_FILE, TESTS)
    implement(tdev, refused)
    result = evolve(tdev, git_repo, "--focus", "docs")
    record, tasks = the_evolution()
    if error is None:  # editing a test's body is not weakening it by these rules
        assert record["status"] == "succeeded", record["error"]
        return
    assert result.returncode == 1
    assert record["status"] == "failed" and record["attempts"] == 3
    assert record["error"].startswith("3 attempts refused; last: "), record["error"]
    assert error in record["error"]
    assert [(t["phase"], t["attempt"]) for t in tasks if t["phase"] == "implement"] == [
        ("implement", n) for n in (1, 2, 3)]
    assert "evaluate" not in [t["phase"] for t in tasks]
    assert f"{record['id']} failed: 3 attempts refused; last: " in result.stdout
    assert_nothing_published(git_repo, base)


def test_a_deleted_file_is_refused_unless_deletions_are_allowed(tdev, git_repo, github):
    commit_file(git_repo, f"{TARGET}/legacy.py", '"""Old code."""\nX = 1\n')
    deletion = {"patch": f"diff --git a/{TARGET}/legacy.py b/{TARGET}/legacy.py\ndeleted file mode 100644\n"
                         f"--- a/{TARGET}/legacy.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-\"\"\"Old code.\"\"\"\n-X = 1\n"}
    implement(tdev, deletion)
    result = evolve(tdev, git_repo, "--attempts", "2")
    record, _ = the_evolution()
    assert result.returncode == 1 and record["attempts"] == 2
    assert record["error"].endswith(f"bad-patch: {TARGET}/legacy.py: deletes a whole file (allowed only with "
                                    "evolution.allow_deletions: true)")


def test_too_many_deleted_lines_are_refused(tdev, git_repo, github):
    tdev.write_config("settings", "evolution:\n  max_deleted_lines: 2\n")
    implement(tdev, {"patch": diff(SAMPLE, SAMPLE_MODULE, '"""Small helpers."""\n')})
    result = evolve(tdev, git_repo, "--attempts", "1", "--focus", "docs")
    record, _ = the_evolution()
    assert result.returncode == 1
    deleted = len(SAMPLE_MODULE.splitlines())
    assert record["error"].endswith(f"bad-patch: deletes {deleted} lines, over evolution.max_deleted_lines (2)")


def test_a_refused_cycle_lets_the_next_cycle_run_with_its_history(tdev, git_repo, github):
    """Only the refusals are repaired; cycle 2 runs after cycle 1 used up its attempts."""
    kept = tdev.base / "kept"
    script = attempts_agent(tdev.base, "implement", [{"patch": "not a diff\n"}], kept)
    # cycle 2 answers the good patch: the agent script picks by cycle
    replies = tdev.base / "agent_implement.replies.json"
    good = json.dumps({"status": "ok", "output": {"patch": DOCSTRINGS, "summary": "docs"}})
    bad = json.loads(replies.read_text())[0]
    (tdev.base / "agent_implement.py").write_text(
        "import json, sys\npayload = sys.stdin.read()\ngiven = json.loads(payload)\n"
        f"open(f{str(kept)!r} + f\"/input-{{given['cycle']}}-{{given['attempt']}}.json\", 'w').write(payload)\n"
        f"sys.stdout.write({good!r} if given['cycle'] == 2 else {json.dumps(bad)!r})\n")
    tdev.use_agents({"implement": script})
    result = evolve(tdev, git_repo, "--focus", "docs", "--cycles", "2", "--attempts", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    record, _ = the_evolution()
    assert record["status"] == "succeeded" and record["attempts"] == 2
    inputs = kept_inputs(kept)
    [cycle_one] = inputs[2, 1]["history"]
    assert cycle_one["cycle"] == 1 and cycle_one["outcome"] == "refused" and cycle_one["files"] == []
    assert "bad-patch: not a patch git can read" in cycle_one["summary"]


# ---- edit forms -----------------------------------------------------------------------------------

def miscounted(patch: str) -> str:
    """The patch with its hunk header's line counts off by a few, as models write them."""
    lines = patch.splitlines(keepends=True)
    header = next(i for i, line in enumerate(lines) if line.startswith("@@"))
    lines[header] = "@@ -1,3 +1,5 @@\n"
    return "".join(lines)


@pytest.mark.parametrize("output", [
    {"patch": miscounted(DOCSTRINGS)},
    {"edits": [
        {"path": SAMPLE, "search": "import os, sys\n", "replace": '"""Small helpers."""\nimport os, sys\n'},
        {"path": SAMPLE, "search": "    return a+b", "replace": '    """The sum of a and b."""\n    return a+b'},
        {"path": SAMPLE, "search": "class Greeter:\n", "replace": 'class Greeter:\n    """Says hello."""\n\n'},
        {"path": SAMPLE, "search": "        if name", "replace": '        """A greeting for name."""\n        if name'},
    ]},
    {"files": [{"path": SAMPLE, "content": DOCUMENTED}]},
], ids=["miscounted-hunk", "edits", "files"])
def test_every_edit_form_applies_and_is_committed(tdev, git_repo, github, output):
    assert miscounted(DOCSTRINGS) != DOCSTRINGS
    implement(tdev, output)
    result = evolve(tdev, git_repo, "--focus", "docs")
    assert result.returncode == 0, result.stdout + result.stderr
    record, _ = the_evolution()
    assert record["status"] == "succeeded" and record["attempts"] == 1
    [branch] = auto_branches(origin_of(git_repo))
    assert git(origin_of(git_repo), "show", f"{branch}:{SAMPLE}") + "\n" == DOCUMENTED


@pytest.mark.parametrize("edits, why", [
    ([{"path": SAMPLE, "search": "return", "replace": "yield"}], f"the search text occurs 3 times in {SAMPLE}"),
    ([{"path": SAMPLE, "search": "absent", "replace": "x"}], f"the search text occurs 0 times in {SAMPLE}"),
    ([{"path": SAMPLE, "search": "", "replace": "x"}], f"empty search on {SAMPLE}, which exists"),
], ids=["three-matches", "no-match", "empty-search-on-a-file"])
def test_an_edit_that_does_not_match_once_is_bad_patch(tdev, git_repo, edits, why):
    implement(tdev, {"edits": edits})
    result = evolve(tdev, git_repo, "--attempts", "1")
    record, tasks = the_evolution()
    assert result.returncode == 1
    assert why in tasks[-1]["error"] and tasks[-1]["error"].startswith("bad-patch: edit 1: ")


def test_an_edit_creates_a_missing_file(tdev, git_repo, github):
    implement(tdev, {"edits": [{"path": f"{TARGET}/extra.py", "search": "", "replace": '"""Extra."""\n'}]})
    result = evolve(tdev, git_repo, "--focus", "docs")
    assert result.returncode == 0, result.stdout + result.stderr
    [branch] = auto_branches(origin_of(git_repo))
    assert git(origin_of(git_repo), "show", f"{branch}:{TARGET}/extra.py") == '"""Extra."""'


# ---- patch rules -----------------------------------------------------------------------------------

SYMLINK_PATCH = (f"diff --git a/{TARGET}/leak.py b/{TARGET}/leak.py\nnew file mode 120000\n"
                 f"--- /dev/null\n+++ b/{TARGET}/leak.py\n@@ -0,0 +1 @@\n+{{outside}}\n\\ No newline at end of file\n")


def test_a_symlink_patch_is_refused_and_nothing_outside_is_read(tdev, git_repo, github, tmp_path):
    secret = tmp_path / "outside.txt"
    secret.write_text("OUTSIDE-THE-REPOSITORY\n")
    base = git(git_repo, "rev-parse", "HEAD")
    kept = implement(tdev, {"patch": SYMLINK_PATCH.format(outside=secret)})
    result = evolve(tdev, git_repo, "--attempts", "2")
    record, tasks = the_evolution()
    assert result.returncode == 1
    assert record["error"] == (f"2 attempts refused; last: implement failed (task {tasks[-1]['id']}): "
                               f"bad-patch: {TARGET}/leak.py: creates or changes a symlink")
    inputs = kept_inputs(kept)
    assert len(inputs) == 2 and "OUTSIDE-THE-REPOSITORY" not in json.dumps(list(inputs.values()))
    artifacts = "".join(p.read_text() for p in (tdev.history / record["id"] / "tasks").iterdir())
    assert "OUTSIDE-THE-REPOSITORY" not in artifacts
    assert_nothing_published(git_repo, base)


@pytest.mark.parametrize("form", ["files", "edits"])
def test_files_and_edits_never_follow_a_symlink(tdev, git_repo, github, tmp_path, form):
    outside = tmp_path / "outside.py"
    outside.write_text("X = 1\n")
    os.symlink(outside, git_repo / TARGET / "linked.py")
    commit_file(git_repo, f"{TARGET}/other.py", "Y = 2\n")
    path = f"{TARGET}/linked.py"
    output = {"files": [{"path": path, "content": "X = 2\n"}]} if form == "files" else {
        "edits": [{"path": path, "search": "X = 1", "replace": "X = 2"}]}
    implement(tdev, output)
    result = evolve(tdev, git_repo, "--attempts", "1")
    record, tasks = the_evolution()
    assert result.returncode == 1
    assert tasks[-1]["error"] == f"bad-patch: {path}: goes through the symlink {path}"
    assert outside.read_text() == "X = 1\n"


def test_a_mode_change_is_refused(tdev, git_repo):
    patch = f"diff --git a/{SAMPLE} b/{SAMPLE}\nold mode 100644\nnew mode 100755\n"
    implement(tdev, {"patch": patch})
    result = evolve(tdev, git_repo, "--attempts", "1")
    _, tasks = the_evolution()
    assert result.returncode == 1
    assert tasks[-1]["error"] == f"bad-patch: {SAMPLE}: changes the file mode 100644 -> 100755"


# ---- where the tests are ----------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["tests-beside", "pyproject-testpaths"])
def test_auto_runs_the_tests_that_live_beside_the_target(tdev, git_repo, github, layout):
    folder = "tests" if layout == "tests-beside" else "checks"
    if layout == "pyproject-testpaths":
        commit_file(git_repo, "pyproject.toml", '[tool.pytest.ini_options]\ntestpaths = ["checks"]\n')
    base = commit_file(git_repo, f"{folder}/test_sample.py", TESTS)
    kept = implement(tdev, {"patch": BROKEN})
    result = evolve(tdev, git_repo, "--attempts", "1", "--focus", "docs")
    record, _ = the_evolution()
    assert result.returncode == 1 and record["tests"] == "failed"
    assert record["error"].startswith(f"tests failed: {folder}.test_sample::test_add (exit 1: ")
    assert kept_inputs(kept)[1, 1]["tests"]["paths"] == [folder]
    assert_nothing_published(git_repo, base)


def test_a_test_command_that_cannot_start_is_test_env_and_a_critical_pre_check(tdev, git_repo):
    env = {"EVOLUTION_TEST_COMMAND": "no-such-test-runner --all"}
    check = tdev.run("pre_evolution_check.py", "--target", str(git_repo / TARGET), env=env)
    assert check.returncode != 0
    assert "test-env: cannot find the test command's program no-such-test-runner" in check.stdout + check.stderr
    implement(tdev, {"patch": DOCSTRINGS})
    result = evolve(tdev, git_repo, "--force", env=env)
    record, tasks = the_evolution()
    assert result.returncode == 1
    assert record["error"].startswith("test-env: cannot start no-such-test-runner: ")
    assert "fix: install it" in record["error"]
    assert [t["phase"] for t in tasks] == []  # found before any agent ran


def test_phases_stay_as_before_on_a_first_attempt_success(tdev, git_repo, github):
    implement(tdev, {"patch": DOCSTRINGS})
    result = evolve(tdev, git_repo, "--focus", "docs")
    assert result.returncode == 0, result.stdout + result.stderr
    record, tasks = the_evolution()
    assert [t["phase"] for t in tasks] == PHASES and record["attempts"] == 1
    body = pull_of(github, record)["body"]
    assert "Attempts: 1\n- attempt 1: passed" in body


def test_analyze_failure_shows_every_attempt(tdev, git_repo):
    commit_file(git_repo, TEST_FILE, TESTS)
    implement(tdev, {"patch": BROKEN}, {"patch": "not a diff\n"})
    assert evolve(tdev, git_repo, "--focus", "docs", "--attempts", "2").returncode == 1
    record, _ = the_evolution()
    report = tdev.run("analyze_failure.py", "--id", record["id"], "--json")
    assert report.returncode == 0, report.stderr
    document = json.loads(report.stdout)
    assert (document["attempts"], document["max_attempts"]) == (2, 2)
    assert [(a["cycle"], a["attempt"], a["outcome"]) for a in document["attempt_log"]] == [
        (1, 1, "refused"), (1, 2, "refused")]
    assert document["attempt_log"][0]["error"].startswith(f"tests failed: {TEST_ID}")
    assert "bad-patch: not a patch git can read" in document["attempt_log"][1]["error"]
    assert document["failure"]["error_class"] == "bad-patch"
    text = tdev.run("analyze_failure.py", "--id", record["id"])
    assert "Attempts: 2 (at most 2 per cycle)" in text.stdout
    assert "cycle 1 attempt 1: refused: tests failed:" in text.stdout
    history = json.loads(tdev.run("show_evolution_history.py", "--json").stdout)
    assert history[0]["attempts"] == 2


def test_a_test_failing_on_the_base_is_reported_not_blamed(tdev, git_repo, github):
    known_bug = '\n\ndef test_known_bug():\n    """Fails on the base."""\n    assert False\n'
    commit_file(git_repo, TEST_FILE, TESTS + known_bug)
    kept = implement(tdev, {"patch": DOCSTRINGS})
    result = evolve(tdev, git_repo, "--focus", "docs")
    assert result.returncode == 0, result.stdout + result.stderr
    record, _ = the_evolution()
    assert record["status"] == "succeeded" and record["tests"] == "passed" and record["attempts"] == 1
    assert kept_inputs(kept)[1, 1]["tests"]["baseline"] == {
        "passed": 2, "failed": 1, "failing": ["packages.agents.test_sample::test_known_bug"]}
    assert "1 test(s) failing on the base too" in pull_of(github, record)["body"]
