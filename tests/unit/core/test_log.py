"""Unit tests of secrets masking (lib/log.py): what is hidden, what stays readable, tracebacks."""

from __future__ import annotations

import click
import pytest

from lib import cli, log

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize("text, shown, hidden", [
    ("https://x-access-token:s3cr3t@api.example.com/repos", "https://***@api.example.com/repos", "s3cr3t"),
    ("clone git+ssh://deploy:pw0rd@git.example.com/x.git", "git+ssh://deploy:***@git.example.com/x.git", "pw0rd"),
    ('{"password": "two words", "user": "bob"}', '{"password": "***", "user": "bob"}', "two words"),
    ("aws_secret_access_key = wJalrXUtnFEMIK7MDENG", "aws_secret_access_key = ***", "wJalrXUtnFEMIK7MDENG"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: *** ***", "dXNlcjpwYXNzd29yZA"),
    ("slack xoxb-1234567890-abcdefghij", "slack ***", "xoxb-1234567890"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----", "***", "MIIEabc"),
    # bare AWS secret access keys (issue 16, item 9): no `=` or `:`, only a word nearby
    (f"aws secret access key {AWS_SECRET}", "aws secret access key ***", AWS_SECRET[:12]),
    (f"export AWS_SECRET_ACCESS_KEY {AWS_SECRET} done", "AWS_SECRET_ACCESS_KEY *** done", AWS_SECRET[:12]),
    (f"using {AWS_SECRET} as the secret", "using *** as the secret", AWS_SECRET[:12]),
    (f"credentials ({AWS_SECRET})", "credentials (***)", AWS_SECRET[:12]),
])
def test_masking_hides_the_secret_and_keeps_the_rest(text, shown, hidden):
    masked = log.mask_secrets(text)
    assert shown in masked and hidden not in masked


@pytest.mark.parametrize("text", [
    "see https://github.com/acme/agents/pull/7", "max_tokens: 4096", "tokens_in: 120", "mailto:oncall@example.com",
    "rotate secrets: no AWS credentials found", "passwords: 3 rotated",
    "commit 3f786850e387550fdab836ed7e6dc881de23001b rotated the secret",  # a git sha is not a key
    f"no word nearby: {AWS_SECRET}", f"the secret is longer: {AWS_SECRET}X",
])
def test_masking_leaves_ordinary_text_alone(text):
    assert log.mask_secrets(text) == text


def test_masked_walks_json_like_values():
    value = {"a": ["token=abc", ("password=x",)], "n": 3, "token": None}
    assert log.masked(value) == {"a": ["token=***", ["password=***"]], "n": 3, "token": None}


def test_debug_traceback_is_masked_with_its_causes(monkeypatch, capsys):
    @click.command()
    def main():
        try:
            raise ConnectionError("cannot reach https://x-access-token:s3cr3t@ghe.example.com/api")
        except ConnectionError as cause:
            raise RuntimeError("GitHub call failed with token=abcdef") from cause

    monkeypatch.setenv("DEBUG", "true")
    monkeypatch.setattr("sys.argv", ["x.py"])
    with pytest.raises(SystemExit) as stop:
        cli.run(main)
    err = capsys.readouterr().err
    assert stop.value.code == 1 and "Traceback" in err and "The above exception" in err
    assert "s3cr3t" not in err and "abcdef" not in err and "https://***@ghe.example.com/api" in err
    assert err.splitlines()[-1] == "error: unexpected RuntimeError: GitHub call failed with token=***"


def test_a_note_is_one_masked_line_on_the_stderr_of_the_moment_whatever_log_level_says(monkeypatch, capsys):
    monkeypatch.setenv("LOG_LEVEL", "ERROR")
    log.setup()
    log.note("state store /tmp/x/state.db is locked by ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaa; waiting")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "note: state store /tmp/x/state.db is locked by ***; waiting\n"
