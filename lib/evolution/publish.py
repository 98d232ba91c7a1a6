"""After a passing cycle: commit with trailers, push the branch, open the labelled PR."""

from __future__ import annotations

from lib.adapters import github, gitops

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


def publish_cycle(runner, cycle: int) -> dict | None:
    """Commit, push and open (once) the PR; returns the PR when one was opened. Dry runs stop short."""
    record, log = runner.record, runner.log
    before = runner.store.get_evolution(runner.id).get("metrics_before") or {}
    after = runner.context["evaluate"].get("metrics") or {}
    changed = runner.context["implement"].get("changed_files", [])
    if record["dry_run"]:
        log.info(f"dry run: {len(changed)} file(s) would be committed on {runner.branch}; nothing committed")
        return None
    subject = f"tdev: {record['focus']} improvements in {runner.target.relative_to(runner.repo)} (cycle {cycle})"
    message = "\n".join([
        subject, "", f"Changed: {', '.join(changed) or 'nothing'}", "",
        f"Metrics-Impact: {metrics_impact(before, after)}",
        f"Evolution-Context: {runner.id}; cycle {cycle}/{record['cycles']}; focus {record['focus']}; "
        f"change {runner.context['plan'].get('change_kind')}",
    ])
    sha = gitops.commit_all(runner.worktree, message)
    if not sha:
        log.info("nothing to commit: the safe fixes changed no file")
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
    body = "\n\n".join([
        f"Automatic **{record['focus']}** evolution `{runner.id}` of `{runner.target.relative_to(runner.repo)}`.",
        metrics_table(before, after),
        "Changed files:\n" + "\n".join(f"- `{name}`" for name in changed),
        f"Change kind: `{runner.context['plan'].get('change_kind')}`. Opened by T-Developer; review before merging.",
    ])
    base = client.get(client.repo_path()).get("default_branch", "main")
    pr = client.create_pull(subject, runner.branch, base, body)
    client.add_labels(pr["number"], [github.AUTO_LABEL])
    log.info(f"opened PR #{pr['number']} {pr.get('html_url', '')} labelled {github.AUTO_LABEL}")
    return pr
