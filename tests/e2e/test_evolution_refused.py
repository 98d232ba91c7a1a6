"""End to end: what the runner refuses (DESIGN §5). A patch it may not take is `bad-patch:`, a reply
that breaks the contract is `bad-output:`, each the failing task's one error line and the evolution's;
a graceful stop asked while a phase runs wins over that phase's bad output. Nothing is pushed and
the operator's checkout stays as it was.
"""

from __future__ import annotations

import pytest
from evolution_agents import (
    DOCSTRINGS,
    DOCUMENTED,
    MINIMAL,
    PHASES,
    SAMPLE,
    add_prevention_pattern,
    assert_nothing_published,
    diff,
    evolve,
    reply_agent,
    the_evolution,
)

from lib.store import open_store
from tests.conftest import PHASE_AGENTS, SAMPLE_MODULE, git


def run_with(tdev, git_repo, outputs: dict, before: dict | None = None):
    """Every phase a command agent answering a valid reply, or its entry in outputs; before: Python lines
    a phase's agent runs first (`payload` holds its input). One attempt: the repair of refused attempts has
    its own tests (test_evolution_attempts.py)."""
    tdev.use_agents({name: reply_agent(tdev.base, name, outputs.get(name, MINIMAL[name]),
                                       before=(before or {}).get(name, "")) for name in PHASES})
    return evolve(tdev, git_repo, "--focus", "docs", "--attempts", "1")


def assert_failed_at(result, phase: str, error: str) -> dict:
    """The evolution failed in phase with the task error line `error`; no later phase ran."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    record, tasks = the_evolution()
    assert [t["phase"] for t in tasks] == PHASES[: PHASES.index(phase) + 1]
    failing = tasks[-1]
    assert (failing["status"], failing["error"]) == ("failed", error)
    assert record["status"] == "failed" and record["error"] == f"{phase} failed (task {failing['id']}): {error}"
    assert result.stdout.strip().splitlines()[-1] == f"{record['id']} failed: {record['error']}"
    assert record["pr_number"] is None
    if phase != "evaluate":  # the runner measures the change before the evaluator sees it
        assert record["metrics_after"] is None
    return record


# ---- bad-patch ---------------------------------------------------------------------------------

@pytest.mark.parametrize("patch, why", [
    (diff("docs/notes.md", None, "# Notes\n"), "touches docs/notes.md outside the target packages/agents"),
    (diff(SAMPLE, SAMPLE_MODULE.replace("a+b", "a*b"), DOCUMENTED), "does not apply: "),
    ("this is not a diff\n", "not a patch git can read"),
], ids=["outside-the-target", "does-not-apply", "not-a-diff"])
def test_a_patch_the_runner_may_not_take_is_bad_patch(tdev, git_repo, github, patch, why):
    base = git(git_repo, "rev-parse", "HEAD")
    result = run_with(tdev, git_repo, {"implement": {"patch": patch}})
    record, tasks = the_evolution()
    assert tasks[-1]["error"].startswith(f"bad-patch: {why}"), tasks[-1]["error"]
    assert_failed_at(result, "implement", tasks[-1]["error"])
    assert_nothing_published(git_repo, base)
    assert not (tdev.history / "worktrees" / record["id"]).exists()


def test_a_patch_over_max_patch_bytes_is_refused(tdev, git_repo):
    base = git(git_repo, "rev-parse", "HEAD")
    tdev.write_config("settings", "evolution:\n  max_patch_bytes: 200\n")
    result = run_with(tdev, git_repo, {"implement": {"patch": DOCSTRINGS}})
    size = len(DOCSTRINGS.encode())
    assert size > 200
    assert_failed_at(result, "implement",
                     f"bad-patch: the patch is {size} bytes, over evolution.max_patch_bytes (200)")
    assert_nothing_published(git_repo, base)


def test_a_patch_on_a_file_a_prevention_pattern_names_is_refused(tdev, git_repo):
    base = git(git_repo, "rev-parse", "HEAD")
    add_prevention_pattern("prevent-pr-7", [SAMPLE])
    result = run_with(tdev, git_repo, {"implement": {"patch": DOCSTRINGS}})
    assert_failed_at(result, "implement", f"bad-patch: touches {SAMPLE} (prevention pattern prevent-pr-7)")
    assert_nothing_published(git_repo, base)
    [pattern] = open_store().list_patterns("prevention")
    assert pattern["hits"] == 1  # operators see which patterns work


EDIT_README = "open(os.path.join(json.loads(payload)['worktree'], 'README.md'), 'w').write('edited\\n')"


@pytest.mark.parametrize("outputs, editor", [
    ({"implement": {"changed_files": ["README.md"]}}, "implement"),
    ({"implement": {"patch": ""}}, "implement"),
    ({}, "implement"),
    ({}, "research"),
], ids=["edited-in-place", "edited-and-said-no-change", "edited-beside-its-patch", "edited-by-research"])
def test_worktree_edits_outside_the_target_are_refused_and_undone(tdev, git_repo, outputs, editor):
    """Local and command agents may edit the worktree: whatever the change holds meets the same rules."""
    base = git(git_repo, "rev-parse", "HEAD")
    result = run_with(tdev, git_repo, outputs, before={editor: EDIT_README})
    assert_failed_at(result, "implement", "bad-patch: touches README.md outside the target packages/agents")
    assert_nothing_published(git_repo, base)
    assert not (git_repo / "README.md").exists()


# ---- bad-output -------------------------------------------------------------------------------

BAD_OUTPUTS = [
    ("research", {"findings": []}, "output.summary is missing"),
    ("research", {"summary": ["a", "list"]}, "output.summary must be a str, got list"),
    ("research", "just text", "output must be an object, got str"),
    ("plan", {"steps": ["document it"]}, "output.files is missing"),
    ("plan", {"files": SAMPLE}, "output.files must be a list, got str"),
    ("plan", {"files": ["README.md"]}, "output.files must be paths inside packages/agents, relative to the "
                                       "repository: README.md"),
    ("implement", {"summary": "done"}, "output.patch is missing (or output.edits, output.files, or "
                                       "output.changed_files for an agent that edited the worktree)"),
    ("implement", {"edits": [{"path": SAMPLE, "search": "a+b"}]}, "output.edits[1] needs path, search, replace "
                                                                   "(strings)"),
    ("implement", {"files": [{"path": "README.md", "content": "x"}]}, "output.files[1].path must be a path inside "
                                                                     "packages/agents, relative to the repository: "
                                                                     "README.md"),
    ("implement", {"edits": []}, "output.edits is empty (send an empty patch for no change)"),
    ("implement", {"patch": 42}, "output.patch must be a str, got int"),
    ("evaluate", {"notes": "fine"}, "output.verdict is missing"),
    ("evaluate", {"verdict": True}, "output.verdict must be a str, got bool"),
    ("evaluate", {"verdict": "maybe"}, "output.verdict must be pass or fail, got 'maybe'"),
]


@pytest.mark.parametrize("phase, output, what", BAD_OUTPUTS, ids=[f"{phase}: {what}" for phase, _, what in BAD_OUTPUTS])
def test_a_reply_that_breaks_the_contract_is_bad_output(tdev, git_repo, phase, output, what):
    base = git(git_repo, "rev-parse", "HEAD")
    result = run_with(tdev, git_repo, {phase: output})
    assert_failed_at(result, phase, f"bad-output: {PHASE_AGENTS[phase]}: {what}")
    assert_nothing_published(git_repo, base)


# ---- a graceful stop wins ------------------------------------------------------------------------

STOP = ("subprocess.run([sys.executable, 'scripts/stop_evolution.py', '--id', os.environ['TDEV_EVOLUTION_ID'], "
        "'--graceful', '--timeout', '0'], check=False, capture_output=True)")


@pytest.mark.parametrize("phase", PHASES)
def test_a_graceful_stop_during_a_phase_with_bad_output_ends_stopped(tdev, git_repo, phase):
    """The agent asks for the stop while it runs (as an operator would), then answers garbage."""
    base = git(git_repo, "rev-parse", "HEAD")
    result = run_with(tdev, git_repo, {phase: {"unexpected": True}}, before={phase: STOP})
    assert result.returncode == 1, result.stdout + result.stderr
    record, tasks = the_evolution()
    nxt = {"research": "plan", "plan": "implement", "implement": "evaluate", "evaluate": "gate"}[phase]
    assert (record["status"], record["error"]) == ("stopped", f"stopped: graceful stop requested before {nxt}")
    assert [t["phase"] for t in tasks] == PHASES[: PHASES.index(phase) + 1]
    assert tasks[-1]["status"] == "failed" and tasks[-1]["error"].startswith(f"bad-output: {PHASE_AGENTS[phase]}: ")
    assert_nothing_published(git_repo, base)
