"""adjust_gates.py: validated, comment-keeping, atomic edits of config/gates.yaml with an audit line."""

from __future__ import annotations

import json

import pytest
import yaml

from lib.errors import ConfigError, UsageError
from lib.quality import gates_file


def audit_lines(tdev) -> list[dict]:
    path = tdev.history / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_adjust_gates_keeps_comments_and_changes_only_the_value(tdev):
    path = tdev.config_dir / "gates.yaml"
    before = path.read_text()
    result = tdev.run("adjust_gates.py", "--metric", "docstring", "--threshold", "75")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "docstring: 50 -> 75 (%)"
    after = path.read_text()
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert changed == [("    threshold: 50", "    threshold: 75")]
    assert "# share of modules and public classes and functions with a docstring" in after
    assert yaml.safe_load(after)["gates"]["docstring"] == {"threshold": 75, "direction": "min", "unit": "%"}
    (entry,) = audit_lines(tdev)
    assert (entry["result"], entry["metric"], entry["old"], entry["new"]) == ("changed", "docstring", 50, 75)
    assert entry["command"] == "adjust_gates.py --metric docstring --threshold 75"
    assert not list(path.parent.glob(".gates.yaml.*"))  # no temporary file left behind


def test_adjust_gates_is_idempotent_and_keeps_fractions(tdev):
    assert tdev.run("adjust_gates.py", "--metric", "complexity", "--threshold", "12.5").returncode == 0
    again = tdev.run("adjust_gates.py", "--metric", "complexity", "--threshold", "12.5")
    assert again.returncode == 0 and "already 12.5" in again.stdout
    assert yaml.safe_load((tdev.config_dir / "gates.yaml").read_text())["gates"]["complexity"]["threshold"] == 12.5
    assert [e["result"] for e in audit_lines(tdev)] == ["changed", "unchanged"]


@pytest.mark.parametrize("how", [("--dry-run",), ()])
def test_dry_run_changes_nothing(tdev, how):
    env = {} if how else {"EVOLUTION_DRY_RUN": "true"}
    path = tdev.config_dir / "gates.yaml"
    before = path.read_text()
    result = tdev.run("adjust_gates.py", "--metric", "coverage", "--threshold", "80", *how, env=env)
    assert result.returncode == 0
    assert "coverage: 70 -> 80 (%)" in result.stdout and "dry run" in result.stdout
    assert path.read_text() == before
    assert audit_lines(tdev)[0]["result"] == "dry-run"


@pytest.mark.parametrize(("metric", "threshold", "message"), [
    ("docstrings", "75", "unknown gate metric 'docstrings'"),
    ("docstring", "101", "out of range for docstring; use a value in 0-100"),
    ("coverage", "-1", "out of range"),
    ("security", "-0.5", "use a value in 0 or more"),
    ("maintainability", "120", "0-100"),
])
def test_bad_metric_or_range_is_a_usage_error(tdev, metric, threshold, message):
    path = tdev.config_dir / "gates.yaml"
    before = path.read_text()
    result = tdev.run("adjust_gates.py", "--metric", metric, "--threshold", threshold)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.startswith("error: ")
    assert path.read_text() == before and not audit_lines(tdev)


def test_missing_gate_is_added_with_its_defaults(tdev):
    tdev.write_config("gates", "# only one gate here\ngates:\n  docstring: {threshold: 50, direction: min}\n")
    result = tdev.run("adjust_gates.py", "--metric", "security", "--threshold", "2", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["old"] is None
    text = (tdev.config_dir / "gates.yaml").read_text()
    assert text.startswith("# only one gate here")
    assert yaml.safe_load(text)["gates"]["security"] == {"threshold": 2, "direction": "max", "unit": "findings"}


def test_validate_unit():
    assert gates_file.validate("complexity", 15.0) == 15
    assert isinstance(gates_file.validate("complexity", 15.0), int)
    assert gates_file.validate("coverage", 0) == 0
    with pytest.raises(UsageError):
        gates_file.validate("lint", 1)


def test_broken_gates_file_is_a_config_error(tdev):
    tdev.write_config("gates", "gates: [unclosed\n")
    result = tdev.run("adjust_gates.py", "--metric", "docstring", "--threshold", "75")
    assert result.returncode == 1 and "not valid YAML" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("extra", [(), ("--dry-run",)], ids=["real", "dry-run"])
def test_a_misspelled_gate_in_the_file_is_refused_by_the_dry_run_too(tdev, extra):
    text = "gates:\n  docstirng: {threshold: 80, direction: min, unit: '%'}\n"
    tdev.write_config("gates", text)
    result = tdev.run("adjust_gates.py", "--metric", "coverage", "--threshold", "70", *extra)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and "docstirng" in result.stderr and "Traceback" not in result.stderr
    assert (tdev.config_dir / "gates.yaml").read_text() == text


def test_validating_a_misspelled_gate_unit(tdev):
    tdev.write_config("gates", "gates:\n  docstirng: {threshold: 80, direction: min, unit: '%'}\n")
    with pytest.raises(ConfigError):
        gates_file.adjust("coverage", 70, dry_run=True)
