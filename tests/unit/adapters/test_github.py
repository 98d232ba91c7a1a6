"""lib/adapters/github.py with `responses`: pagination, labels through the issues endpoint, the
one-line explanations of a bad token and an exhausted rate limit (never the token itself), gh's
token order and hosts, and the bounded retries of gateway errors and secondary rate limits."""

from __future__ import annotations

import os

import pytest
import responses

from lib.adapters import github
from lib.errors import ConfigError, NotFound

API = "https://api.github.test"
TOKEN = "ghp_responsesTOKEN0123456789abcdefghij"


@pytest.fixture
def no_gh(monkeypatch, tmp_path):
    """No GitHub variable of the machine, and no gh on PATH (tmp_path/bin holds the fakes)."""
    for key in list(os.environ):
        if key.startswith(("GH_", "GITHUB_")):
            monkeypatch.delenv(key)
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    return tmp_path / "bin"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(monkeypatch, no_gh, sleeps):
    monkeypatch.setenv("GITHUB_API_URL", API)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/widgets")
    return github.Client.from_env(sleep=sleeps.append)


@responses.activate
def test_pulls_with_label_follow_pagination_and_skip_plain_issues(client):
    page2 = f"{API}/repos/acme/widgets/issues?page=2"
    responses.get(f"{API}/repos/acme/widgets/issues", json=[{"number": 3, "pull_request": {}}, {"number": 2}],
                  headers={"Link": f'<{page2}>; rel="next"'})
    responses.get(page2, json=[{"number": 1, "pull_request": {"merged_at": None}}])
    pulls = client.pulls_with_label()
    assert [p["number"] for p in pulls] == [3, 1]
    first = responses.calls[0].request
    assert "labels=auto-evolution" in first.url and "state=all" in first.url
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"


@responses.activate
def test_create_pull_then_label_it(client):
    responses.post(f"{API}/repos/acme/widgets/pulls", json={"number": 7, "html_url": "u"}, status=201)
    responses.post(f"{API}/repos/acme/widgets/issues/7/labels", json=[{"name": "auto-evolution"}])
    pull = client.create_pull("t", "tdev/auto/x", "main", "body")
    assert client.add_labels(pull["number"], ["auto-evolution"]) == [{"name": "auto-evolution"}]
    assert responses.calls[1].request.body == b'{"labels": ["auto-evolution"]}'


@responses.activate
def test_bad_token_rate_limit_and_not_found_are_one_clear_line(client):
    responses.get(f"{API}/rate_limit", json={"message": "Bad credentials"}, status=401)
    with pytest.raises(github.GitHubError, match="rejected the token") as caught:
        client.rate_limit()
    assert TOKEN not in str(caught.value)
    responses.get(f"{API}/repos/acme/widgets/pulls/5", status=403, json={"message": "API rate limit exceeded"},
                  headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1893456000"})
    with pytest.raises(github.GitHubError, match="rate limit exceeded.*wait until"):
        client.get_pull(5)
    responses.get(f"{API}/repos/acme/widgets/pulls/6", status=404, json={"message": "Not Found"})
    with pytest.raises(NotFound):
        client.get_pull(6)


def test_not_configured(no_gh):
    assert not github.configured()
    with pytest.raises(ConfigError, match="no GH_TOKEN or GITHUB_TOKEN, and no logged-in gh"):
        github.Client.from_env()


def fake_gh(folder, answer: str = "gho_fromGhAuthLogin0123456789abcdef") -> None:
    """A gh that knows one login on github.com and records how it was asked."""
    gh = folder / "gh"
    gh.write_text(f'#!/bin/sh\necho "$@" >> {folder}/gh.calls\n'
                  f'[ "$*" = "auth token --hostname github.com" ] && echo {answer} && exit 0\n'
                  'echo "no oauth token found for $4" >&2; exit 1\n')
    gh.chmod(0o755)


def test_token_order_is_gh_s(monkeypatch, no_gh):
    monkeypatch.setenv("GITHUB_TOKEN", "from-github-token")
    monkeypatch.setenv("GH_TOKEN", "from-gh-token")
    assert github.token() == "from-gh-token"
    monkeypatch.delenv("GH_TOKEN")
    assert github.token() == "from-github-token"
    monkeypatch.delenv("GITHUB_TOKEN")
    assert github.token() is None  # gh is not installed: nothing else is tried
    fake_gh(no_gh)
    assert github.token() == "gho_fromGhAuthLogin0123456789abcdef"
    assert github.token() == "gho_fromGhAuthLogin0123456789abcdef"
    assert (no_gh / "gh.calls").read_text() == "auth token --hostname github.com\n"  # asked once


def test_enterprise_host_its_api_and_its_own_tokens(monkeypatch, no_gh):
    monkeypatch.setenv("GH_HOST", "ghe.corp.example")
    monkeypatch.setenv("GH_TOKEN", "a-github.com-token")
    fake_gh(no_gh)
    assert github.api_endpoint() == "https://ghe.corp.example/api/v3"
    assert github.token() is None  # neither the github.com token nor gh's github.com login go there
    assert (no_gh / "gh.calls").read_text() == "auth token --hostname ghe.corp.example\n"
    monkeypatch.setenv("GITHUB_ENTERPRISE_TOKEN", "ghe-token")
    assert github.Client().token == "ghe-token"
    monkeypatch.setenv("GITHUB_API_URL", "https://ghe.corp.example/api/v3/")
    assert github.Client().api_url == "https://ghe.corp.example/api/v3"
    monkeypatch.delenv("GITHUB_API_URL")
    monkeypatch.setenv("GH_HOST", "octo.ghe.com")
    assert github.api_endpoint() == "https://api.octo.ghe.com" and github.token() == "a-github.com-token"
    monkeypatch.setenv("GH_HOST", "github.com")
    assert github.api_endpoint() == "https://api.github.com"


@responses.activate
def test_gateway_errors_are_retried_with_backoff_or_retry_after(client, sleeps):
    url = f"{API}/repos/acme/widgets/pulls/5"
    responses.get(url, status=502, body="<html>bad gateway</html>")
    responses.get(url, status=503, json={"message": "unavailable"}, headers={"Retry-After": "7"})
    responses.get(url, status=504, json={"message": "timeout"})
    responses.get(url, json={"number": 5})
    assert client.get_pull(5) == {"number": 5}
    assert sleeps == [1.0, 7.0, 4.0]


@responses.activate
def test_gateway_retries_are_bounded_and_a_create_is_never_repeated(client, sleeps):
    responses.get(f"{API}/repos/acme/widgets/pulls/5", status=502, body="bad gateway")
    with pytest.raises(github.GitHubError, match="502 bad gateway \\(after 4 attempts\\)"):
        client.get_pull(5)
    assert sleeps == [1.0, 2.0, 4.0]
    sleeps.clear()
    responses.post(f"{API}/repos/acme/widgets/pulls", status=502, body="bad gateway")
    with pytest.raises(github.GitHubError, match="502"):
        client.create_pull("t", "head", "main", "body")  # it may have been created: the caller decides
    assert sleeps == [] and len([c for c in responses.calls if c.request.method == "POST"]) == 1
    labels = f"{API}/repos/acme/widgets/issues/7/labels"
    responses.post(labels, status=502, body="bad gateway")
    responses.post(labels, json=[{"name": "auto-evolution"}])
    assert client.add_labels(7, ["auto-evolution"]) == [{"name": "auto-evolution"}]  # labelling twice is harmless


@responses.activate
def test_secondary_rate_limits_wait_as_asked_within_a_bound(client, sleeps):
    url = f"{API}/repos/acme/widgets/pulls"
    limited = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes."}
    responses.post(url, status=403, json=limited, headers={"Retry-After": "3"})
    responses.post(url, status=429, json=limited)
    responses.post(url, json={"number": 8}, status=201)
    assert client.create_pull("t", "head", "main", "body") == {"number": 8}
    assert sleeps == [3.0, 60.0]  # no Retry-After: GitHub asks for at least a minute
    sleeps.clear()
    responses.get(f"{API}/repos/acme/widgets/pulls/9", status=403, json=limited, headers={"Retry-After": "600"})
    with pytest.raises(github.GitHubError, match="secondary rate limit.*GitHub asks to wait 600 s"):
        client.get_pull(9)
    assert sleeps == []


@responses.activate
def test_the_exhausted_hourly_quota_is_not_retried(client, sleeps):
    responses.get(f"{API}/rate_limit", status=403, json={"message": "API rate limit exceeded"},
                  headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1893456000", "Retry-After": "5"})
    with pytest.raises(github.GitHubError, match="rate limit exceeded.*wait until"):
        client.rate_limit()
    assert sleeps == []
