"""Unit tests of config validation (lib/config.py): known names, numbers in their ranges, keys given
twice, and the one reader of TIMEOUT_SECONDS."""

from __future__ import annotations

import pytest

from lib import config
from lib.errors import ConfigError, UsageError


@pytest.mark.parametrize("name, text, message", [
    ("gates", "gates:\n  docstrng: {threshold: 50, direction: min}\n",
     "gates: unknown key 'docstrng' (known: docstring, complexity, maintainability, coverage, security)"),
    ("gates", "gates:\n  security: {threshold: -1, direction: max}\n",
     "gates.security.threshold: expected a number >= 0, got -1"),
    ("settings", "evolution:\n  heartbeat_seconds: 0\n",
     "evolution.heartbeat_seconds: expected a number > 0 and <= 3600, got 0"),
    ("settings", "retention:\n  keep_daily: 0\n", "retention.keep_daily: expected a number >= 1, got 0"),
    ("settings", "evolution:\n  candidates: 17\n",
     "evolution.candidates: expected a number >= 1 and <= 16, got 17"),
    ("settings", "aws:\n  sns_topics: {notify-oncal: x}\n", "aws.sns_topics: unknown key 'notify-oncal'"),
    ("thresholds", "metrics:\n  succes_rate: {direction: min, normal: 85, alert: 70}\n",
     "metrics: unknown key 'succes_rate'"),
    ("alerts", "alerts:\n  - {name: a, metric: ErrorRate, threshold: 1, period: 0, action: notify-team}\n",
     "alerts[0].period: expected a number >= 10, got 0"),
    ("cost_limits", "daily_usd: 0\n", "daily_usd: expected a number > 0, got 0"),
])
def test_names_and_numbers_are_checked(tdev, name, text, message):
    path = tdev.write_config(name, text)
    with pytest.raises(ConfigError) as caught:
        config.load(name)
    assert str(caught.value).startswith(f"{path}: {message}")
    assert caught.value.path == path


def test_values_inside_their_ranges_and_booleans_pass_as_before(tdev):
    tdev.write_config("settings", "evolution:\n  heartbeat_seconds: 0.5\nretention:\n  secret_max_age_days: 0\n")
    assert config.load("settings")["evolution"]["heartbeat_seconds"] == 0.5
    tdev.write_config("gates", "gates:\n  coverage: {threshold: 100, direction: min}\n")
    assert config.gates()["coverage"]["threshold"] == 100
    tdev.write_config("cost_limits", "daily_usd: null\n")
    assert config.cost_limits()["daily_usd"] is None


def test_a_key_given_twice_is_refused_with_both_lines(tdev):
    path = tdev.write_config("agents", "agents:\n  - name: a\n    phase: plan\n    runtime: local\n    name: b\n")
    with pytest.raises(ConfigError, match=rf"^{path}: key 'name' appears twice, at lines 2 and 5; keep one"):
        config.load("agents")


def test_the_same_key_in_two_mappings_and_yaml_merges_are_fine(tdev):
    tdev.write_config("gates", """x-base: &base {direction: min, unit: "%"}
gates:
  docstring: {<<: *base, threshold: 50}
  coverage:
    <<: *base
    threshold: 70
    direction: min
""")
    with pytest.raises(ConfigError, match="unknown key 'x-base'"):  # the anchor's own key is still unknown
        config.load("gates")
    data = config.read_yaml(tdev.config_dir / "gates.yaml")
    assert data["gates"]["coverage"] == {"direction": "min", "unit": "%", "threshold": 70}


@pytest.mark.parametrize("value, expected", [("", 3600.0), ("90", 90.0), ("0.5", 0.5)])
def test_phase_timeout(monkeypatch, value, expected):
    monkeypatch.setenv("TIMEOUT_SECONDS", value)
    assert config.phase_timeout() == expected


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "inf"])
def test_phase_timeout_refuses_what_is_not_a_positive_number(monkeypatch, value):
    monkeypatch.setenv("TIMEOUT_SECONDS", value)
    with pytest.raises(UsageError, match=rf"^TIMEOUT_SECONDS='{value}': expected a number of seconds > 0"):
        config.phase_timeout()
