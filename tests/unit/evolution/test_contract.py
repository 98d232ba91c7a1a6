"""The agent contract's pieces that need no runner: the remote URL agents are given, the checks every reply
meets (finite costs and counts, bounded nesting, UTF-8)."""

from __future__ import annotations

import pytest

from lib.agents.reply_bounds import MAX_DEPTH, check_nesting, utf8
from lib.evolution.contract import BadOutput, cost_of_failed_call, public_url, read_reply


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


# ---- generic output checks (issue 16, items 5 and 6) -------------------------------------------------

AGENT = {"name": "research-agent", "runtime": "command"}


def reply(**fields) -> dict:
    return {"status": "ok", "output": {"summary": "s"}, **fields}


@pytest.mark.parametrize("cost", [float("nan"), float("inf"), float("-inf"), -0.01, 10**400, True, "0.5"])
def test_a_cost_that_is_not_a_finite_amount_is_bad_output(cost):
    with pytest.raises(BadOutput, match=r"^bad-output: research-agent: cost_usd must be a finite number >= 0"):
        read_reply("research", AGENT, reply(cost_usd=cost), "packages/agents")


@pytest.mark.parametrize("tokens", [-1, 2**63, 10**400, 1.5, {"input": -1}, {"output": 2**64}, {"input": 1e400}])
def test_a_token_count_that_is_not_a_count_is_bad_output(tokens):
    with pytest.raises(BadOutput, match=r"^bad-output: research-agent: tokens must be a whole number"):
        read_reply("research", AGENT, reply(tokens=tokens), "packages/agents")


def test_finite_costs_and_counts_are_taken():
    taken = read_reply("research", AGENT, reply(cost_usd=0.25, tokens={"input": 2**63 - 1, "output": 3}), "t")
    assert (taken.cost_usd, taken.tokens_in, taken.tokens_out) == (0.25, 2**63 - 1, 3)


@pytest.mark.parametrize("cost", [float("nan"), float("inf"), 10**400, -2])
def test_a_failed_call_never_counts_a_cost_that_is_not_finite(cost):
    assert cost_of_failed_call({"cost_usd": cost, "tokens": 5}) == (0.0, 5, 0)


def test_a_huge_number_is_named_by_its_size_not_printed():
    with pytest.raises(BadOutput) as refused:
        read_reply("research", AGENT, reply(cost_usd=-(10**5000)), "t")
    assert "16610-bit integer" in refused.value.message and len(refused.value.message) < 200


def nested(depth: int):
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_nesting_up_to_the_limit_is_taken_and_deeper_is_bad_output():
    check_nesting("a", nested(MAX_DEPTH))
    check_nesting("a", {"k": nested(MAX_DEPTH - 1)})
    with pytest.raises(BadOutput, match="nested deeper than 100 levels"):
        check_nesting("a", {"k": nested(MAX_DEPTH)})
    with pytest.raises(BadOutput, match="nested deeper than 100 levels"):
        read_reply("research", AGENT, reply(output={"summary": "s", "deep": nested(5000)}), "t")


def test_stdout_that_is_not_utf8_is_bad_output_naming_the_byte():
    assert utf8("a", "café".encode()) == "café"
    with pytest.raises(BadOutput, match=r"^bad-output: a: the reply is not valid UTF-8 \(byte 3: b'\\xe9'\)"):
        utf8("a", b"caf\xe9")


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
