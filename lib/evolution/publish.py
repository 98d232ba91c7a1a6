"""After a passing cycle: commit with trailers, push the branch, open the labelled PR.

A dry run commits only on its throwaway branch (so that the next cycle starts from this one's
result) and pushes nothing; the runner deletes that branch at the end.
"""

from __future__ import annotations

from lib import agents
from lib.adapters import github, gitops
from lib.log import mask_secrets

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


def attempts_section(feedback: list[dict], passing: int) -> str:
    """The cycle's attempts for the PR body: each refused one with its error line, then the one that passed."""
    lines = [f"- attempt {entry['attempt']}: refused: {mask_secrets(entry['error'])[:300]}" for entry in feedback]
    return "\n".join([f"Attempts: {passing}", *lines, f"- attempt {passing}: passed"])


def change_kind(record: dict) -> str:
    """What prevention patterns learn from a reverted PR: the focus and the agent that made the change."""
    return f"{record['focus']}/{agents.for_phase('implement')['name']}"


def subject(runner, cycle: int) -> str:
    return f"tdev: {runner.record['focus']} improvements in {runner.target_rel} (cycle {cycle})"


def commit(runner, cycle: int, before: dict, verdict, change) -> str:
    """Commit exactly the judged change, with its trailers, on the evolution's branch; the new sha.

    What the worktree gained after the judgement (the test run's __pycache__ or reports, an
    evaluator's edits) was never judged: it is dropped, not committed.
    """
    if gitops.worktree_diff(runner.worktree) != change.patch:
        runner.log.warning("the worktree changed after the judgement (test run or evaluator): "
                           "only the judged change is committed")
        gitops.discard_changes(runner.worktree)
        gitops.apply_patch(runner.worktree, change.patch)
    record, after = runner.record, verdict.metrics_after
    message = "\n".join([
        subject(runner, cycle), "", f"Changed: {', '.join(change.files)}", "",
        f"Metrics-Impact: {metrics_impact(before, after)}",
        f"Evolution-Context: {runner.id}; cycle {cycle}/{record['cycles']}; focus {record['focus']}; "
        f"change {change_kind(record)}; tests {verdict.tests['status']}",
    ])
    return gitops.commit_all(runner.worktree, message)


def open_pull_request(runner, cycle: int, before: dict, verdict, change, sha: str) -> dict | None:
    """Push and open (once) the labelled PR; None when a dry run, no remote or no GitHub stops short."""
    record, log = runner.record, runner.log
    if record["dry_run"]:
        log.info(f"dry run: {len(change.files)} file(s) would be committed on {runner.branch}; nothing pushed")
        return None
    log.info(f"committed {sha[:12]} on {runner.branch}")
    if not gitops.has_remote(runner.repo):
        log.warning(f"no remote 'origin': branch {runner.branch} left in {runner.repo}, no PR")
        return None
    gitops.push(runner.worktree, runner.branch)
    log.info(f"pushed {runner.branch} to origin")
    if not github.configured():
        log.warning("GitHub not configured (GITHUB_TOKEN, GITHUB_REPOSITORY): branch pushed, no PR opened")
        return None
    existing = runner.store.get_evolution(runner.id)
    if existing.get("pr_number"):
        log.info(f"PR #{existing['pr_number']} updated by the push")
        return None
    client = github.Client.from_env()
    notes = runner.pr_notes
    body = "\n\n".join(part for part in [
        f"Automatic **{record['focus']}** evolution `{runner.id}` of `{runner.target_rel}`.",
        f"Summary (from the agent): {mask_secrets(notes['summary'])}" if notes.get("summary") else "",
        metrics_table(before, verdict.metrics_after),
        tests_line(verdict.tests),
        attempts_section(notes.get("feedback", []), notes.get("attempt", 1)),
        "Changed files:\n" + "\n".join(f"- `{name}`" for name in change.files),
        f"Change kind: `{change_kind(record)}`. Opened by T-Developer; review before merging.",
    ] if part)
    base = client.get(client.repo_path()).get("default_branch", "main")
    pr = client.create_pull(subject(runner, cycle), runner.branch, base, body)
    client.add_labels(pr["number"], [github.AUTO_LABEL])
    log.info(f"opened PR #{pr['number']} {pr.get('html_url', '')} labelled {github.AUTO_LABEL}")
    return pr
