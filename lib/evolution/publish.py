"""After a passing cycle: commit with trailers, push the branch, open the labelled PR.

A dry run commits only on its throwaway branch (so that the next cycle starts from this one's
result) and pushes nothing; the runner deletes that branch at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lib import agents
from lib.adapters import github, gitops
from lib.evolution.judge import Verdict
from lib.evolution.patching import Change
from lib.log import mask_secrets
from lib.store import Store

METRIC_ROWS = [
    ("docstring", "Docstring coverage", "%"), ("complexity", "Avg. complexity", ""),
    ("maintainability", "Maintainability", ""), ("lint", "Lint findings", ""),
    ("security", "Security findings", ""), ("coverage", "Test coverage", "%"), ("sloc", "Source lines", ""),
]  # fmt: skip


def _value(metrics: dict, key: str, unit: str) -> str:
    value = (metrics or {}).get(key)
    return "n/a" if value is None else f"{value}{unit}"


def metrics_table(before: dict, after: dict) -> str:
    """The before/after Markdown table for the PR body."""
    lines = ["| Metric | Before | After |", "|---|---:|---:|"]
    for key, label, unit in METRIC_ROWS:
        lines.append(f"| {label} | {_value(before, key, unit)} | {_value(after, key, unit)} |")
    return "\n".join(lines)


def metrics_impact(before: dict, after: dict) -> str:
    """The Metrics-Impact trailer: only what changed, compactly."""
    changes = [f"{key} {before.get(key)}->{after.get(key)}" for key, _, _ in METRIC_ROWS
               if before and after and before.get(key) != after.get(key)]
    return ", ".join(changes) or "none"


def tests_line(tests: dict) -> str:
    """The test result as the PR shows it: `not run` is never dressed up as passed."""
    if tests["status"] == "not run":
        return "Tests: **not run** (" + tests["summary"] + ")."
    return f"Tests: **{tests['status']}** (`{tests['command']}`: {tests['summary']})."


def attempts_section(feedback: list[dict], passing: int, chosen: str | None = None) -> str:
    """The cycle's attempts for the PR body: each refused one (or refused candidate) with its error line, then the
    one that passed (chosen: which candidate, and why, DESIGN §5 Candidates)."""
    lines = [f"- attempt {entry['attempt']}" + (f", candidate {entry['candidate']}" if entry.get("candidate") else "")
             + f": refused: {mask_secrets(entry['error'])[:300]}" for entry in feedback]
    return "\n".join([f"Attempts: {passing}", *lines,
                      f"- attempt {passing}: passed" + (f" ({mask_secrets(chosen)[:300]})" if chosen else "")])


def change_kind(focus: str) -> str:
    """What prevention patterns learn from a reverted PR: the focus and the agent that made the change."""
    return f"{focus}/{agents.for_phase('implement')['name']}"


@dataclass(frozen=True)
class Publication:
    """One passing cycle's change as publish needs it (DESIGN §5): built by the runner, so that publishing
    depends on these fields and not on the whole runner."""

    evolution_id: str
    focus: str
    cycle: int
    cycles: int
    dry_run: bool
    repo: Path
    worktree: Path
    branch: str
    target_rel: str
    before: dict
    verdict: Verdict
    change: Change
    summary: str | None = None  # the implement agent's, for the PR body
    feedback: list[dict] = field(default_factory=list)  # the refused attempts before the passing one
    attempt: int = 1
    chosen: str | None = None  # which candidate passed, and why (DESIGN §5 Candidates)


def subject(publication: Publication) -> str:
    return f"tdev: {publication.focus} improvements in {publication.target_rel} (cycle {publication.cycle})"


def commit(publication: Publication, log) -> str:
    """Commit exactly the judged change, with its trailers, on the evolution's branch; the new sha.

    What the worktree gained after the judgement (the test run's __pycache__ or reports, an
    evaluator's edits) was never judged: it is dropped, not committed.
    """
    change, worktree = publication.change, publication.worktree
    if gitops.worktree_diff(worktree) != change.patch:
        log.warning("the worktree changed after the judgement (test run or evaluator): "
                    "only the judged change is committed")
        gitops.discard_changes(worktree)
        gitops.apply_patch(worktree, change.patch)
    verdict, kind = publication.verdict, change_kind(publication.focus)
    message = "\n".join([
        subject(publication), "", f"Changed: {', '.join(change.files)}", "",
        f"Metrics-Impact: {metrics_impact(publication.before, verdict.metrics_after)}",
        f"Evolution-Context: {publication.evolution_id}; cycle {publication.cycle}/{publication.cycles}; "
        f"focus {publication.focus}; change {kind}; tests {verdict.tests['status']}",
    ])
    return gitops.commit_all(worktree, message)


def open_pull_request(publication: Publication, sha: str, store: Store, log) -> dict | None:
    """Push and open (once) the labelled PR; None when a dry run, no remote or no GitHub stops short."""
    change, branch, verdict = publication.change, publication.branch, publication.verdict
    if publication.dry_run:
        log.info(f"dry run: {len(change.files)} file(s) would be committed on {branch}; nothing pushed")
        return None
    log.info(f"committed {sha[:12]} on {branch}")
    if not gitops.has_remote(publication.repo):
        log.warning(f"no remote 'origin': branch {branch} left in {publication.repo}, no PR")
        return None
    gitops.push(publication.worktree, branch)
    log.info(f"pushed {branch} to origin")
    if not github.configured():
        log.warning("GitHub not configured (GITHUB_TOKEN, GITHUB_REPOSITORY): branch pushed, no PR opened")
        return None
    existing = store.get_evolution(publication.evolution_id)
    if existing.get("pr_number"):
        log.info(f"PR #{existing['pr_number']} updated by the push")
        return None
    client = github.Client.from_env()
    summary = publication.summary
    body = "\n\n".join(part for part in [
        f"Automatic **{publication.focus}** evolution `{publication.evolution_id}` of `{publication.target_rel}`.",
        f"Summary (from the agent): {mask_secrets(summary)}" if summary else "",
        metrics_table(publication.before, verdict.metrics_after),
        tests_line(verdict.tests),
        attempts_section(publication.feedback, publication.attempt, publication.chosen),
        "Changed files:\n" + "\n".join(f"- `{name}`" for name in change.files),
        f"Change kind: `{change_kind(publication.focus)}`. Opened by T-Developer; review before merging.",
    ] if part)
    base = client.get(client.repo_path()).get("default_branch", "main")
    pr = client.create_pull(subject(publication), branch, base, body)
    client.add_labels(pr["number"], [github.AUTO_LABEL])
    log.info(f"opened PR #{pr['number']} {pr.get('html_url', '')} labelled {github.AUTO_LABEL}")
    return pr
