"""lib/adapters/github.py with `responses`: pagination, labels through the issues endpoint, and the
one-line explanations of a bad token and an exhausted rate limit (never the token itself)."""

from __future__ import annotations

import pytest
import responses

from lib.adapters import github
from lib.errors import ConfigError, NotFound

API = "https://api.github.test"
TOKEN = "ghp_responsesTOKEN0123456789abcdefghij"


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("GITHUB_API_URL", API)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/widgets")
    return github.Client.from_env()


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


def test_not_configured(monkeypatch):
    for name in ("GITHUB_TOKEN", "GH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert not github.configured()
    with pytest.raises(ConfigError, match="GITHUB_TOKEN"):
        github.Client.from_env()
