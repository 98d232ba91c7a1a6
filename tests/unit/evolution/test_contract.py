"""The agent contract's pieces that need no runner: the remote URL agents are given."""

from __future__ import annotations

import pytest

from lib.evolution.contract import public_url


@pytest.mark.parametrize("url, shown", [
    ("https://deploy:s3cr3t@git.example.com/acme/widgets.git", "https://git.example.com/acme/widgets.git"),
    ("https://ghp_abcdefghijklmnopqrstuvwxyz0123@github.com/acme/widgets", "https://github.com/acme/widgets"),
    ("http://user@host:8080/acme/widgets.git", "http://host:8080/acme/widgets.git"),
    ("ssh://git:password@host:22/acme/widgets.git", "ssh://git@host:22/acme/widgets.git"),
    ("ssh://git@host/acme/widgets.git", "ssh://git@host/acme/widgets.git"),
    ("git@github.com:acme/widgets.git", "git@github.com:acme/widgets.git"),
    ("/srv/git/origin.git", "/srv/git/origin.git"),
    (None, None),
    ("", None),
])
def test_the_remote_url_loses_its_credentials(url, shown):
    assert public_url(url) == shown
