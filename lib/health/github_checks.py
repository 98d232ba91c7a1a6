"""Health check of GitHub: the API answers, the token works, rate limit left, repository reachable."""

from __future__ import annotations

from datetime import UTC, datetime

from lib.adapters import github
from lib.errors import NotFound
from lib.health import check

LOW_RATE_LIMIT = 0.1  # warn when less than a tenth of the hourly requests is left


@check("github_api", "github", groups=("full",))
def github_api(context: dict) -> tuple[str, str]:

    if not github.token():
        return "ok", "not configured (no GITHUB_TOKEN or GH_TOKEN): PRs are not opened, branches are left"
    client = github.Client()
    try:
        core = client.rate_limit().get("resources", {}).get("core", {})
    except github.GitHubError as failure:
        if "401" in failure.message or "rate limit" in failure.message:  # unreachable stays unknown
            return "critical", str(failure)
        raise
    remaining, limit = int(core.get("remaining", 0)), int(core.get("limit", 0)) or 1
    reset = datetime.fromtimestamp(int(core.get("reset", 0)), UTC).strftime("%H:%M UTC")
    rate = f"rate limit {remaining}/{limit} left (resets {reset})"
    if remaining == 0:
        return "critical", f"{rate}: GitHub calls fail until then"
    if not client.repo:
        return "warning", f"API reachable, {rate}; repository unknown: export GITHUB_REPOSITORY=owner/name"
    try:
        name = client.get(client.repo_path()).get("full_name", client.repo)
    except NotFound:
        return "critical", f"repository {client.repo} not found, or the token cannot see it; {rate}"
    if remaining < limit * LOW_RATE_LIMIT:
        return "warning", f"{name}: {rate}"
    return "ok", f"{name} reachable, {rate}"
