"""Evolution candidates (DESIGN §5 "Candidates"): with evolution.candidates N > 1 the implement phase asks for
N changes at once, each in a worktree of its own, judges each by the rules of a single attempt, and keeps the
passing one with the best gain for the focus.

What is decided here runs nothing: which agent makes each candidate, where its worktree lives, what a judged
change gains for the focus, which candidate wins and why, and what a refused attempt tells the next one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lib.quality import FOCUS_METRICS

#: Metrics where fewer is better (findings, complexity); every other focus metric gains by growing.
LOWER_IS_BETTER = frozenset({"lint", "complexity", "security"})
#: Gains closer than this are equal: the tie-breaks decide (smaller change, then lower number).
GAIN_TOLERANCE = 1e-9
#: A candidate's worktree is `worktrees/<evolution id>-c<k>` (cleanup and gc read the owner back from the name).
#: The owner must be a whole id: an id's own random tail may read `c58688`, which is no candidate number.
_CANDIDATE_NAME = re.compile(r"^(?P<owner>evo-\d{14}-[0-9a-f]+)-c(?P<number>\d+)$")

PASSED, REFUSED, FAILED, UNCHANGED = "passed", "refused", "failed", "unchanged"


def worktree(worktrees: Path, evolution_id: str, number: int) -> Path:
    """Where candidate `number` of an evolution works: beside the evolution's own worktree."""
    return worktrees / f"{evolution_id}-c{number}"


def owner(name: str) -> str:
    """The evolution a folder of worktrees/ belongs to: the name itself, or the id before `-c<k>`."""
    match = _CANDIDATE_NAME.match(name)
    return match.group("owner") if match else name


def agents_for(implement_agents: list[dict], count: int) -> list[dict]:
    """The agent of each candidate: the registered implement agents in turn (one agent asked count times)."""
    return [implement_agents[index % len(implement_agents)] for index in range(count)]


def metric_gain(metric: str, before, after) -> float | None:
    """The improvement of one metric relative to its base value, positive when it got better;
    None when either side was not measured."""
    if not isinstance(before, (int, float)) or not isinstance(after, (int, float)):
        return None
    moved = (before - after) if metric in LOWER_IS_BETTER else (after - before)
    return moved / max(abs(before), 1.0)


def gain(focus: str, before: dict, after: dict) -> float:
    """DESIGN §5: the sum, over the focus's metrics (lib.quality.FOCUS_METRICS), of each metric's improvement
    relative to its base value; the runner's own measurement, never what an agent says."""
    moves = [metric_gain(metric, before.get(metric), after.get(metric)) for metric in FOCUS_METRICS[focus]]
    return sum(move for move in moves if move is not None)


@dataclass
class Outcome:
    """One judged candidate as the choice sees it."""

    number: int
    agent: str
    status: str  # passed | refused | failed | unchanged
    error: str | None = None
    gain: float | None = None
    lines: int = 0  # lines added plus deleted: the smaller change wins a tie
    task_id: str | None = None
    moves: dict = field(default_factory=dict)  # metric -> "before->after" for the focus's metrics

    def as_json(self) -> dict:
        return {"candidate": self.number, "agent": self.agent, "task_id": self.task_id, "outcome": self.status,
                "error": self.error, "gain": None if self.gain is None else round(self.gain, 6),
                "lines_changed": self.lines, "metrics": self.moves}


def lines_changed(entries: list[dict]) -> int:
    """Lines added plus deleted by a change (gitops.diff_entries)."""
    return sum((entry.get("added") or 0) + (entry.get("deleted") or 0) for entry in entries)


def moves(focus: str, before: dict, after: dict) -> dict:
    """How the focus's metrics moved, as shown in attempts.json: {metric: "before->after"}."""
    return {metric: f"{before.get(metric)}->{after.get(metric)}" for metric in FOCUS_METRICS[focus]}


def rank_key(outcome: Outcome) -> tuple:
    """Best first: the highest gain, then the smaller change, then the lower candidate number."""
    return (-round(outcome.gain or 0.0, 9), outcome.lines, outcome.number)


def choose(outcomes: list[Outcome]) -> Outcome | None:
    """The passing candidate with the best gain (ties: smaller change, then lower number); None when none passed."""
    passing = [outcome for outcome in outcomes if outcome.status == PASSED]
    return min(passing, key=rank_key) if passing else None


def why(winner: Outcome, outcomes: list[Outcome], focus: str) -> str:
    """Why the winner was kept, in one line for the log, attempts.json and the PR body."""
    passing = sorted((o for o in outcomes if o.status == PASSED), key=rank_key)
    if len(passing) == 1:
        return f"the only one of {len(outcomes)} candidates that passed"
    runner_up = passing[1]
    if abs((winner.gain or 0.0) - (runner_up.gain or 0.0)) > GAIN_TOLERANCE:
        reason = f"the best gain for focus {focus}"
    elif winner.lines != runner_up.lines:
        reason = f"the same gain for focus {focus} as candidate {runner_up.number}, with a smaller change"
    else:
        reason = f"the same gain and size as candidate {runner_up.number}, and the lower number"
    gains = ", ".join(f"candidate {o.number} {o.gain:+.4f} ({o.lines} lines changed)" for o in passing)
    return f"{reason} ({len(passing)} of {len(outcomes)} passed: {gains})"


def refusal(outcomes: list[Outcome]) -> str:
    """The error of an attempt none of whose candidates passed: each candidate's refusal, in number order."""
    return "no candidate passed: " + "; ".join(
        f"candidate {o.number} ({o.agent}): {o.error or o.status}" for o in sorted(outcomes, key=lambda o: o.number))


def share(limit: int, count: int) -> int:
    """Each of count candidates' part of a feedback bound, so that one attempt's feedback stays within it."""
    return max(1, limit // max(1, count))
