"""lib/quality/patterns.py: the planner's blocked() question and the error classes the mining groups by."""

from __future__ import annotations

import pytest

from lib.quality import patterns
from lib.store.sqlite import SQLiteStore


def test_blocked_matches_files_and_change_kind_and_counts_hits():
    store = SQLiteStore.in_memory()
    store.put_pattern({"id": "prevent-pr-10", "kind": "prevention", "source": "12", "created_at": "2024-01-01",
                       "hits": 0, "signature": {"files": ["packages/agents/sample.py", "docs/*.md"],
                                                "change_kind": "ruff-fix:E+format"}})
    store.put_pattern({"id": "prevent-pr-5", "kind": "prevention", "source": "5", "created_at": "2024-01-02",
                       "hits": 3, "signature": {"files": ["packages/agents/planner.py"], "change_kind": "any"}})
    found = patterns.blocked(store, ["sample.py", "other.py", "planner.py", "docs/guide.md"], "ruff-fix:E+format")
    assert [(name, pattern["id"]) for name, pattern in found] == [
        ("sample.py", "prevent-pr-10"), ("docs/guide.md", "prevent-pr-10"), ("planner.py", "prevent-pr-5")]
    assert patterns.blocked(store, ["sample.py"], "ruff-fix:D") == []  # another kind of change is allowed
    assert patterns.blocked(store, ["agents/sample.py", "xsample.py"], "ruff-fix:E+format")[0][0] == "agents/sample.py"
    hits = {p["id"]: p["hits"] for p in store.list_patterns()}
    assert hits == {"prevent-pr-10": 3, "prevent-pr-5": 4}


@pytest.mark.parametrize("error, agent, expected", [
    ("agent-error: refactor-agent: RuntimeError: ruff check exited 2: boom", "refactor-agent",
     "agent-error/RuntimeError"),
    ("timeout: refactor-agent did not finish within 5s", "refactor-agent", "timeout"),
    ("gates-failed: cycle 1: docstring 40 < 80", None, "gates-failed"),
    ("something odd happened", None, "something odd happened"),
    (None, None, "unknown"),
])
def test_error_class(error, agent, expected):
    assert patterns.error_class(error, agent) == expected
