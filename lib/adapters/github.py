"""A small GitHub REST client that follows gh's and GitHub Actions' conventions.

Token, in gh's order: GH_TOKEN, then GITHUB_TOKEN (for a GitHub Enterprise host
GH_ENTERPRISE_TOKEN, then GITHUB_ENTERPRISE_TOKEN, so that a github.com token never goes to
another host), then `gh auth token` of a logged-in gh. Host: GH_HOST (default github.com); the
API is GITHUB_API_URL, else https://api.github.com, https://api.<name>.ghe.com or
https://<host>/api/v3 for GitHub Enterprise Server. Repository: GITHUB_REPOSITORY=owner/name,
else settings github.repository. 502/503/504 (idempotent calls) and secondary rate limits are
retried, honouring Retry-After up to a bound; lists follow the Link header. 401s and rate limits
are one line. requests is imported only when a call is made.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from lib import config
from lib.errors import ConfigError, ExternalError, NotFound
from lib.log import mask_secrets

log = logging.getLogger(__name__)

DEFAULT_HOST = "github.com"
DEFAULT_API = "https://api.github.com"
AUTO_LABEL = "auto-evolution"
#: Gateway errors worth another try; GitHub answers them for a call it did not carry out.
RETRY_STATUSES = (502, 503, 504)
IDEMPOTENT = ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
ATTEMPTS = 4
#: The longest wait for one retry: a Retry-After beyond it fails now, naming the wait.
MAX_WAIT_SECONDS = 60.0
#: GitHub's advice for a secondary rate limit without Retry-After: wait at least a minute.
SECONDARY_WAIT_SECONDS = 60.0
GH_TIMEOUT_SECONDS = 10


class GitHubError(ExternalError):
    """GitHub answered with an error (or not at all)."""


def host() -> str:
    """The GitHub host, as gh reads it from GH_HOST."""
    return (os.environ.get("GH_HOST", "").strip().lower().removeprefix("https://").rstrip("/")
            or DEFAULT_HOST)


def _enterprise(name: str) -> bool:
    """GitHub Enterprise Server: neither github.com nor a GHE.com (data residency) tenant."""
    return name != DEFAULT_HOST and not name.endswith(".ghe.com")


def api_endpoint() -> str:
    explicit = os.environ.get("GITHUB_API_URL", "").strip()
    if explicit:
        return explicit.rstrip("/")
    name = host()
    if name == DEFAULT_HOST:
        return DEFAULT_API
    return f"https://{name}/api/v3" if _enterprise(name) else f"https://api.{name}"


def token() -> str | None:
    """The first token of gh's order (see the module docstring); never printed or logged."""
    names = ("GH_TOKEN", "GITHUB_TOKEN")
    if _enterprise(host()):
        names = ("GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN")
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    gh = shutil.which("gh")
    return _gh_auth_token(gh, host()) if gh else None


@functools.cache
def _gh_auth_token(gh: str, name: str) -> str | None:
    """The token of a logged-in gh, the last resort (asked once per process); None when not logged in."""
    try:
        done = subprocess.run([gh, "auth", "token", "--hostname", name], capture_output=True, text=True,
                              timeout=GH_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = done.stdout.strip()
    return value if done.returncode == 0 and value else None


def repository() -> str | None:
    return os.environ.get("GITHUB_REPOSITORY") or config.settings()["github"]["repository"]


def configured() -> bool:
    """True when a token and a repository are known, so PRs can be opened."""
    return bool(token() and repository())


class Client:
    def __init__(self, api_url: str | None = None, auth_token: str | None = None, repo: str | None = None,
                 timeout: float = 15.0, sleep: Callable[[float], None] = time.sleep):
        self.api_url = (api_url or api_endpoint()).rstrip("/")
        self.token = auth_token or token()
        self.repo = repo or repository()
        self.timeout = timeout
        self.sleep = sleep
        self._session = None

    @classmethod
    def from_env(cls, require_repo: bool = True, **options) -> Client:
        client = cls(**options)
        if not client.token:
            raise ConfigError("GitHub is not configured: no GH_TOKEN or GITHUB_TOKEN, and no logged-in gh",
                              "export GH_TOKEN=<token> (or gh auth login)")
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

    def request(self, method: str, path: str, params: dict | None = None, json_body=None,
                idempotent: bool | None = None):
        """One call, retried on a gateway error (idempotent calls only: a POST that timed out may have
        been carried out) and on a secondary rate limit; returns the requests.Response after turning
        errors into GitHubError."""
        import requests

        url = path if path.startswith("http") else f"{self.api_url}{path}"
        retry_gateway = method.upper() in IDEMPOTENT if idempotent is None else idempotent
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self._http().request(method, url, params=params, json=json_body, timeout=self.timeout)
            except requests.RequestException as failure:
                raise GitHubError(f"GitHub unreachable at {mask_secrets(self.api_url)}: {type(failure).__name__}",
                                  "check the network, GH_HOST and GITHUB_API_URL") from None
            wait = _retry_wait(response, attempt, retry_gateway)
            if wait is None or attempt == ATTEMPTS or wait > MAX_WAIT_SECONDS:
                break
            log.info("GitHub %s %s: %s; retrying in %.0f s", method, path, response.status_code, wait)
            self.sleep(wait)
        if response.status_code < 400:
            return response
        raise _error(method, path, response, attempt, wait)

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
            url, query = response.links.get("next", {}).get("url"), None
        return items

    # ---- the operations the toolkit needs --------------------------------------------
    def repo_path(self, suffix: str = "") -> str:
        return f"/repos/{self.repo}{suffix}"

    def create_pull(self, title: str, head: str, base: str, body: str) -> dict:
        return self.post(self.repo_path("/pulls"), {"title": title, "head": head, "base": base, "body": body})

    def add_labels(self, number: int, labels: list[str]) -> list:
        """Labels go through the issues endpoint: the create-PR call ignores them."""
        return self.request("POST", self.repo_path(f"/issues/{number}/labels"), json_body={"labels": labels},
                            idempotent=True).json()

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


def _retry_after(response) -> float | None:
    """Retry-After in seconds (GitHub sends seconds; an HTTP date is accepted too)."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _secondary_limit(response) -> bool:
    """A secondary rate limit (too many calls at once), not the exhausted hourly quota."""
    if response.status_code not in (403, 429) or response.headers.get("X-RateLimit-Remaining") == "0":
        return False
    return (response.status_code == 429 or "Retry-After" in response.headers
            or "secondary rate limit" in _message(response).lower())


def _retry_wait(response, attempt: int, retry_gateway: bool) -> float | None:
    """Seconds to wait before the next attempt, or None when the answer is final."""
    after = _retry_after(response)
    if _secondary_limit(response):
        return SECONDARY_WAIT_SECONDS if after is None else after
    if response.status_code in RETRY_STATUSES and retry_gateway:
        return float(2 ** (attempt - 1)) if after is None else after
    return None


def _error(method: str, path: str, response, attempts: int, wait: float | None) -> GitHubError:
    message = _message(response)
    status = response.status_code
    if status == 401:
        return GitHubError("GitHub rejected the token (401 Bad credentials)",
                           "set a valid GH_TOKEN or GITHUB_TOKEN with repo scope (or gh auth login)")
    if _secondary_limit(response):
        tried = f"tried {attempts} times" if attempts > 1 else f"GitHub asks to wait {wait:.0f} s"
        return GitHubError(f"GitHub secondary rate limit ({message}); {tried}",
                           "run again in a few minutes, with fewer jobs calling GitHub at once")
    if status in (403, 429) and response.headers.get("X-RateLimit-Remaining") == "0":
        reset = response.headers.get("X-RateLimit-Reset")
        when = (datetime.fromtimestamp(int(reset), UTC).strftime("%H:%M UTC") if reset and reset.isdigit()
                else "later")
        return GitHubError(f"GitHub API rate limit exceeded ({message})",
                           f"wait until {when} or use a token with a higher limit")
    if status == 404:
        return NotFound(f"GitHub: {method} {path}: not found", "check GITHUB_REPOSITORY and the number")
    suffix = f" (after {attempts} attempts)" if status in RETRY_STATUSES and attempts > 1 else ""
    return GitHubError(f"GitHub: {method} {path}: {status} {message}{suffix}")
