"""lib/evolution/candidates.py and the runner's refusal of an attempt none of whose candidates passed (DESIGN §5)."""

from __future__ import annotations

import pytest

from lib.evolution import candidates
from lib.evolution.candidates import FAILED, PASSED, REFUSED, UNCHANGED, Outcome
from lib.evolution.runner import FEEDBACK_PATCH_BYTES, CandidatesRefused, Refused
from lib.evolution.testing import TAIL_BYTES


def passed(number: int, gain: float, lines: int) -> Outcome:
    return Outcome(number, f"agent-{number}", PASSED, gain=gain, lines=lines)


# ---- gain ---------------------------------------------------------------------------------------

def test_the_gain_is_the_relative_improvement_of_the_focus_metrics():
    assert candidates.gain("docs", {"docstring": 20.0}, {"docstring": 100.0}) == pytest.approx(4.0)
    assert candidates.gain("docs", {"docstring": 20.0}, {"docstring": 10.0}) == pytest.approx(-0.5)
    # fewer lint findings is better; quality sums lint and docstring
    assert candidates.gain("lint", {"lint": 10}, {"lint": 5}) == pytest.approx(0.5)
    assert candidates.gain("quality", {"lint": 10, "docstring": 40.0},
                           {"lint": 5, "docstring": 60.0}) == pytest.approx(0.5 + 0.5)
    assert candidates.gain("security", {"security": 0}, {"security": 2}) == pytest.approx(-2.0)  # scale at least 1


def test_metrics_the_runner_did_not_measure_gain_nothing():
    assert candidates.gain("complexity", {}, {"complexity": 3.0}) == 0.0
    assert candidates.gain("quality", {"lint": 4, "docstring": None}, {"lint": 2, "docstring": 50.0}) == 0.5


# ---- the choice ------------------------------------------------------------------------------------

def test_the_passing_candidate_with_the_best_gain_wins():
    outcomes = [passed(1, 1.0, 1), passed(2, 4.0, 5), Outcome(3, "agent-3", REFUSED, "tests failed: t", 9.0, 1)]
    winner = candidates.choose(outcomes)
    assert winner.number == 2  # a refused candidate's gain never counts
    assert candidates.why(winner, outcomes, "docs") == (
        "the best gain for focus docs (2 of 3 passed: candidate 2 +4.0000 (5 lines changed), "
        "candidate 1 +1.0000 (1 lines changed))")


def test_a_tie_goes_to_the_smaller_change_then_to_the_lower_number():
    smaller = [passed(1, 0.5, 9), passed(2, 0.5 + 1e-12, 3)]
    assert candidates.choose(smaller).number == 2
    assert candidates.why(candidates.choose(smaller), smaller, "lint").startswith(
        "the same gain for focus lint as candidate 1, with a smaller change")
    same = [passed(3, 0.5, 4), passed(1, 0.5, 4), passed(2, 0.5, 4)]
    assert candidates.choose(same).number == 1
    assert candidates.why(candidates.choose(same), same, "lint").startswith(
        "the same gain and size as candidate 2, and the lower number")


def test_a_lone_passing_candidate_wins_whatever_its_gain():
    outcomes = [Outcome(1, "a", REFUSED, "bad-patch: x"), passed(2, -0.25, 2), Outcome(3, "c", UNCHANGED)]
    assert candidates.choose(outcomes).number == 2
    assert candidates.why(candidates.choose(outcomes), outcomes, "docs") == "the only one of 3 candidates that passed"


def test_none_passing_chooses_none_and_names_every_candidate():
    outcomes = [Outcome(2, "b", FAILED, "implement failed (task t2): timeout: b"), Outcome(1, "a", REFUSED, "x"),
                Outcome(3, "a", UNCHANGED)]
    assert candidates.choose(outcomes) is None
    assert candidates.refusal(outcomes) == ("no candidate passed: candidate 1 (a): x; candidate 2 (b): implement "
                                            "failed (task t2): timeout: b; candidate 3 (a): unchanged")


def test_one_agent_is_asked_for_every_candidate_and_several_take_turns():
    one, two = {"name": "one"}, {"name": "two"}
    assert [a["name"] for a in candidates.agents_for([one], 3)] == ["one", "one", "one"]
    assert [a["name"] for a in candidates.agents_for([one, two], 3)] == ["one", "two", "one"]


def test_a_candidate_worktree_belongs_to_its_evolution(tmp_path):
    path = candidates.worktree(tmp_path, "evo-20260101000000-abcdef", 2)
    assert path == tmp_path / "evo-20260101000000-abcdef-c2"
    assert candidates.owner(path.name) == "evo-20260101000000-abcdef"
    assert candidates.owner("evo-20260101000000-abcdef") == "evo-20260101000000-abcdef"


def test_an_id_whose_random_tail_reads_like_a_candidate_number_is_its_own_owner(tmp_path):
    """One id in about 170 ends `-c` and five digits: taking it for a candidate made cleanup call it unknown."""
    assert candidates.owner("evo-20261207174132-c58688") == "evo-20261207174132-c58688"
    path = candidates.worktree(tmp_path, "evo-20261207174132-c58688", 3)
    assert candidates.owner(path.name) == "evo-20261207174132-c58688"


# ---- feedback when none passed ----------------------------------------------------------------------

def test_each_refused_candidate_is_one_feedback_entry_within_its_share_of_the_bounds():
    big_patch, long_tail = "+x\n" * 20000, "y" * 20000
    tests = {"exit_code": 1, "failed": ["t::a"], "output_tail": long_tail}
    gate = {"metric": "docstring", "before": 40, "value": 30, "rule": "no regression", "direction": "min",
            "threshold": 50}
    refusals = [(Outcome(1, "agent-a", REFUSED, "tests failed: t::a"), Refused("tests failed: t::a", big_patch, tests)),
                (Outcome(3, "agent-b", REFUSED, "gates-failed: docstring"),
                 Refused("gates-failed: docstring", "+z\n", None, [gate]))]
    refused = CandidatesRefused(candidates.refusal([o for o, _ in refusals]), refusals)
    first, second = refused.feedback_entries(2)
    assert (first["attempt"], first["candidate"], first["agent"], first["error"]) == (
        2, 1, "agent-a", "tests failed: t::a")
    assert len(first["patch"].encode()) <= FEEDBACK_PATCH_BYTES // 2 + 100 and "[... cut:" in first["patch"]
    assert len(first["tests"]["output_tail"].encode()) <= TAIL_BYTES // 2 + 20
    assert first["tests"]["failed"] == ["t::a"]
    assert (second["candidate"], second["tests"], second["patch"]) == (3, None, "+z\n")
    assert second["gates"] == [{"name": "docstring", "before": 40, "after": 30, "rule": "no regression: >= 50"}]
    assert refused.reason.startswith("no candidate passed: candidate 1 (agent-a): tests failed: t::a; candidate 3")


def test_a_single_refusal_keeps_its_one_entry_as_before():
    refused = Refused("bad-patch: x", "patch")
    assert refused.feedback_entries(1) == [refused.feedback(1)]
    assert "candidate" not in refused.feedback(1)
