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


@pytest.mark.parametrize("output, problem", [
    ({"edits": [{"path": "pkg/m.py", "search": "a", "replace": "b"}]}, None),
    ({"files": [{"path": "pkg/m.py", "content": ""}]}, None),
    ({"patch": "", "edits": "ignored: the patch is the form"}, None),
    ({"edits": [{"path": "pkg/m.py", "search": "a"}]}, "output.edits[1] needs path, search, replace (strings)"),
    ({"edits": ["pkg/m.py"]}, "output.edits[1] needs path, search, replace (strings)"),
    ({"files": [{"path": "../m.py", "content": "x"}]}, "output.files[1].path must be a path inside pkg"),
    ({"files": {"pkg/m.py": "x"}}, "output.files must be a list, got dict"),
    ({"files": []}, "output.files is empty"),
], ids=["edits", "files", "patch-wins", "edit-without-replace", "edit-not-an-object", "file-outside", "files-dict",
        "files-empty"])
def test_the_implement_forms_are_checked(output, problem):
    from lib.evolution.contract import BadOutput, read_reply

    agent = {"name": "coder", "runtime": "bedrock"}
    if problem is None:
        assert read_reply("implement", agent, {"status": "ok", "output": output}, "pkg").output == output
        return
    with pytest.raises(BadOutput) as refused:
        read_reply("implement", agent, {"status": "ok", "output": output}, "pkg")
    assert refused.value.message.startswith(f"bad-output: coder: {problem}")


def test_pytest_is_a_runtime_requirement():
    """DESIGN §5: after README's install (requirements.txt only), `auto` tests can run."""
    from tests.conftest import ROOT

    names = [line.split(">=")[0].split("==")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert "pytest" in names
