"""The prompt module shared by the model runtimes: the §5 input rendered (files with line numbers, map,
tests, feedback, history), the reply forms read back, the worst-case estimate that budgets reserve."""

from __future__ import annotations

import json

import pytest

from lib.agents import AgentError, prompting
from lib.agents.model import ModelRuntime

BASE = {"phase": "implement", "cycle": 1, "target": "pkg", "focus": "docs",
        "files": [{"path": "pkg/a.py", "content": "x = 1\ny = 2\n"}], "context": {}}


def test_files_carry_line_numbers_and_the_files_block_is_the_same_for_every_phase():
    files = prompting.render_files(BASE)
    assert "```python\n1| x = 1\n2| y = 2\n```" in files and prompting.LINE_NUMBER_NOTE in files
    assert prompting.render_files({**BASE, "phase": "research", "cycle": 2}) == files
    assert "implement" not in files  # the phase lives in the message, after the cacheable prefix


def test_numbered_aligns_and_keeps_a_missing_final_newline_out():
    assert prompting.numbered("a\n" * 10).splitlines()[0] == " 1| a"
    assert prompting.numbered("a\nb") == "1| a\n2| b\n"


def test_symlinks_and_files_over_the_budget_are_named_without_content():
    files = prompting.render_files({**BASE, "files": [{"path": "pkg/l.py", "content": None, "symlink": True},
                                                      {"path": "pkg/big.py", "content": None}]})
    assert "## pkg/l.py\n(a symlink: not followed" in files and "## pkg/big.py\n(content not included" in files


def test_absent_or_empty_map_tests_feedback_and_history_add_no_section():
    message = prompting.render_message({**BASE, "map": [], "feedback": [], "history": []})
    for title in ("# Map", "# Tests", "earlier attempts", "# Earlier cycles"):
        assert title not in message
    assert message.startswith("# Phase: implement (cycle 1)\n")


def test_map_tests_feedback_and_history_are_rendered_when_present():
    message = prompting.render_message({
        **BASE, "attempt": 2,
        "map": [{"path": "pkg/b.py", "lines": 40, "symbols": ["def load(path: str) -> dict: Read the file."]}],
        "tests": {"command": "python -m pytest -q tests", "paths": ["tests"],
                  "baseline": {"passed": 12, "failed": 1, "failing": ["tests/test_b.py::test_slow"]}},
        "feedback": [{"attempt": 1, "error": "tests failed: tests/test_a.py::test_x", "patch": "-x = 1\n+x = 2\n",
                      "tests": {"exit_code": 1, "failed": ["tests/test_a.py::test_x"], "output_tail": "assert 2 == 1"},
                      "gates": [{"name": "docstring", "before": 40, "after": 38, "rule": "min 50"}]}],
        "history": [{"cycle": 1, "outcome": "succeeded", "summary": "documented a.py", "files": ["pkg/a.py"]}],
    })
    assert message.startswith("# Phase: implement (cycle 1, attempt 2)")
    assert "## pkg/b.py (40 lines)\n- def load(path: str) -> dict: Read the file." in message
    assert "baseline on the base commit: 12 passed, 1 failed" in message and "tests/test_b.py::test_slow" in message
    assert "## attempt 1: tests failed: tests/test_a.py::test_x" in message and "assert 2 == 1" in message
    assert "gate docstring: 40 -> 38 (min 50)" in message and "```diff\n-x = 1\n+x = 2\n```" in message
    assert "- cycle 1: succeeded (pkg/a.py): documented a.py" in message


def test_a_candidate_is_told_which_it_is_and_hears_each_refused_candidate():
    message = prompting.render_message({
        **BASE, "attempt": 2, "candidate": 2, "candidates": 3,
        "feedback": [{"attempt": 1, "candidate": 1, "agent": "a", "error": "tests failed: t::x", "patch": ""},
                     {"attempt": 1, "candidate": 3, "agent": "b", "error": "bad-patch: no", "patch": ""}]})
    assert message.startswith("# Phase: implement (cycle 1, attempt 2, candidate 2 of 3: one of several changes "
                              "asked for at once, the best passing one is kept)\n")
    assert "## attempt 1, candidate 1: tests failed: t::x" in message
    assert "## attempt 1, candidate 3: bad-patch: no" in message


def test_implement_reads_the_last_diff_or_json_block_whichever_comes_last():
    edits = {"edits": [{"path": "pkg/a.py", "search": "x = 1\n", "replace": "x = 2\n"}]}
    reply = f"First:\n```diff\n-a\n+b\n```\nBetter:\n```json\n{json.dumps(edits)}\n```"
    assert prompting.parse_reply("implement", reply, "x") == {**edits, "summary": "First: ```diff -a +b ``` Better:"}
    files = {"files": [{"path": "pkg/a.py", "content": "password = 'kept as written'\n"}], "summary": "s"}
    assert prompting.parse_reply("implement", f"```json\n{json.dumps(files)}\n```", "x") == files
    assert prompting.parse_reply("implement", f"```json\n{json.dumps(files)}\n```\n```diff\n-a\n```",
                                 "x")["patch"] == "-a\n"


def test_implement_json_without_edits_or_files_is_bad_output():
    with pytest.raises(AgentError, match=r"^bad-output: x: the last ```json block holds neither edits nor files"):
        prompting.parse_reply("implement", '```json\n{"patch": "nope"}\n```', "x")


def test_an_openai_length_stop_is_named():
    with pytest.raises(AgentError, match="cut at max_tokens"):
        prompting.parse_reply("plan", "```json\n{", "x", "length")


def test_the_worst_case_is_the_prompt_estimate_plus_a_full_answer(tdev):
    runtime = ModelRuntime({"name": "a", "phase": "plan", "runtime": "openai", "max_tokens": 1000,
                            "price_per_1k_input_usd": 0.003, "price_per_1k_output_usd": 0.015})
    prompt = runtime.prompt(BASE)
    assert prompt.estimated_tokens() == -(-prompt.size() // 3)
    assert runtime.worst_case_usd(BASE) == pytest.approx(prompt.estimated_tokens() / 1000 * 0.003 + 0.015)


def test_cached_tokens_cost_the_cache_price_or_else_the_input_price(tdev):
    agent = {"name": "a", "phase": "plan", "runtime": "openai", "price_per_1k_input_usd": 0.003,
             "price_per_1k_output_usd": 0.015}
    tokens = {"input": 10_000, "output": 1000, "cached": 8000}
    assert ModelRuntime({**agent, "price_per_1k_cache_read_usd": 0.0003}).cost(tokens) == pytest.approx(
        2 * 0.003 + 8 * 0.0003 + 0.015)
    assert ModelRuntime(agent).cost(tokens) == pytest.approx(10 * 0.003 + 0.015)
