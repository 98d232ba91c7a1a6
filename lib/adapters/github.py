"""A small GitHub REST client: token and repository from the GitHub Actions / gh conventions.

GITHUB_TOKEN or GH_TOKEN, GITHUB_REPOSITORY=owner/name (else settings github.repository),
GITHUB_API_URL (default https://api.github.com). Follows Link pagination and explains
401s and rate limits in one line. requests is imported only when a call is made.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

from lib import config
from lib.errors import ConfigError, ExternalError, NotFound
from lib.log import mask_secrets

DEFAULT_API = "https://api.github.com"
AUTO_LABEL = "auto-evolution"


class GitHubError(ExternalError):
    """GitHub answered with an error (or not at all)."""


def token() -> str | None:
    return os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN") or None


def repository() -> str | None:

    return os.environ.get("GITHUB_REPOSITORY") or config.settings()["github"]["repository"]


def configured() -> bool:
    """True when a token and a repository are known, so PRs can be opened."""
    return bool(token() and repository())


class Client:
    def __init__(self, api_url: str | None = None, auth_token: str | None = None, repo: str | None = None,
                 timeout: float = 15.0):
        self.api_url = (api_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API).rstrip("/")
        self.token = auth_token or token()
        self.repo = repo or repository()
        self.timeout = timeout
        self._session = None

    @classmethod
    def from_env(cls, require_repo: bool = True) -> Client:
        client = cls()
        if not client.token:
            raise ConfigError("GitHub is not configured: no GITHUB_TOKEN or GH_TOKEN", "export GITHUB_TOKEN=<token>")
        if require_repo and not client.repo:
            raise ConfigError("GitHub repository unknown", "export GITHUB_REPOSITORY=owner/name")
        return client

    # ---- transport -----------------------------------------------------------------
    def _http(self):
        if self._session is None:
            import requests

            self._session = requests.Session()
            self._session.headers.update({
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "t-developer-ops",
            })
            if self.token:
                self._session.headers["Authorization"] = f"Bearer {self.token}"
        return self._session

    def request(self, method: str, path: str, params: dict | None = None, json_body=None):
        """One call; returns the requests.Response after turning errors into GitHubError."""
        import requests

        url = path if path.startswith("http") else f"{self.api_url}{path}"
        try:
            response = self._http().request(method, url, params=params, json=json_body, timeout=self.timeout)
        except requests.RequestException as failure:
            raise GitHubError(f"GitHub unreachable at {mask_secrets(self.api_url)}: {type(failure).__name__}",
                              "check the network and GITHUB_API_URL") from None
        if response.status_code < 400:
            return response
        message = _message(response)
        if response.status_code == 401:
            raise GitHubError("GitHub rejected the token (401 Bad credentials)",
                              "set a valid GITHUB_TOKEN with repo scope")
        if response.status_code in (403, 429) and (
            response.headers.get("X-RateLimit-Remaining") == "0" or "rate limit" in message.lower()
        ):
            reset = response.headers.get("X-RateLimit-Reset")
            when = (datetime.fromtimestamp(int(reset), UTC).strftime("%H:%M UTC") if reset and reset.isdigit()
                    else "later")
            raise GitHubError(f"GitHub API rate limit exceeded ({message})",
                              f"wait until {when} or use a token with a higher limit")
        if response.status_code == 404:
            raise NotFound(f"GitHub: {method} {path}: not found", "check GITHUB_REPOSITORY and the number")
        raise GitHubError(f"GitHub: {method} {path}: {response.status_code} {message}")

    def get(self, path: str, params: dict | None = None):
        return self.request("GET", path, params).json()

    def post(self, path: str, body):
        return self.request("POST", path, json_body=body).json()

    def paginate(self, path: str, params: dict | None = None, limit: int | None = None) -> list:
        """Every item of a list endpoint, following rel="next" links."""
        items: list = []
        url, query = path, {"per_page": 100, **(params or {})}
        while url:
            response = self.request("GET", url, query)
            items.extend(response.json())
            if limit and len(items) >= limit:
                return items[:limit]
            url, query = _next_link(response.headers.get("Link", "")), None
        return items

    # ---- the operations the toolkit needs --------------------------------------------
    def repo_path(self, suffix: str = "") -> str:
        return f"/repos/{self.repo}{suffix}"

    def create_pull(self, title: str, head: str, base: str, body: str) -> dict:
        return self.post(self.repo_path("/pulls"), {"title": title, "head": head, "base": base, "body": body})

    def add_labels(self, number: int, labels: list[str]) -> list:
        """Labels go through the issues endpoint: the create-PR call ignores them."""
        return self.post(self.repo_path(f"/issues/{number}/labels"), {"labels": labels})

    def pulls_with_label(self, label: str = AUTO_LABEL, state: str = "all", since: str | None = None) -> list[dict]:
        """PRs carrying a label (the issues endpoint filters by label; the pulls one cannot)."""
        params = {"labels": label, "state": state}
        if since:
            params["since"] = since
        return [item for item in self.paginate(self.repo_path("/issues"), params) if "pull_request" in item]

    def get_pull(self, number: int) -> dict:
        return self.get(self.repo_path(f"/pulls/{number}"))

    def pull_files(self, number: int) -> list[dict]:
        return self.paginate(self.repo_path(f"/pulls/{number}/files"))

    def rate_limit(self) -> dict:
        return self.get("/rate_limit")


def _message(response) -> str:
    try:
        return str(response.json().get("message", ""))[:200]
    except ValueError:
        return response.text[:200]


def _next_link(header: str) -> str | None:
    match = re.search(r'<([^>]+)>;\s*rel="next"', header)
    return match.group(1) if match else None
