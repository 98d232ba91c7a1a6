"""Unit tests of the shared core: config validation, time arguments, secrets masking, CLI exit codes."""

from __future__ import annotations

from datetime import timedelta

import click
import pytest

from lib import cli, config, log, timeparse
from lib.errors import ConfigError, NotFound, UsageError


def test_shipped_config_is_valid(tdev):
    for name in ("settings", "agents", "alerts", "thresholds", "gates", "cost_limits"):
        assert isinstance(config.load(name), dict)
    assert [a["name"] for a in config.agents()] == ["research-agent", "planner-agent", "refactor-agent",
                                                    "evaluator-agent"]
    assert config.load("thresholds")["metrics"]["success_rate"]["alert"] == 70
    assert [a["name"] for a in config.load("alerts")["alerts"]] == ["EvolutionFailure", "HighCost",
                                                                    "SecurityViolation"]


@pytest.mark.parametrize("text, words", [
    ("agents:\n  - {name: x, phase: research, runtime: teleport}\n", ["agents[0].runtime", "teleport"]),
    ("agents:\n  - {phase: research, runtime: local}\n", ["missing required key 'name'"]),
    ("agents:\n  - {name: x, phase: research, runtime: local, colour: red}\n", ["unknown key 'colour'"]),
    ("agents: [\n", ["not valid YAML"]),
    ("agents: 3\n", ["expected a list"]),
])
def test_bad_config_names_file_key_and_expectation(tdev, text, words):
    path = tdev.write_config("agents", text)
    with pytest.raises(ConfigError) as caught:
        config.load("agents")
    assert str(path) in str(caught.value)
    for word in words:
        assert word in str(caught.value)


def test_missing_config_file_says_how_to_create_it(tdev):
    (tdev.config_dir / "gates.yaml").unlink()
    with pytest.raises(ConfigError, match="init_evolution.py"):
        config.load("gates")


def test_init_lays_down_the_shipped_config_files_that_are_missing(tdev):
    from lib.ops import install

    (tdev.config_dir / "gates.yaml").unlink()
    done = install.initialise()
    assert f"created {tdev.config_dir / 'gates.yaml'}" in done and f"exists  {tdev.config_dir / 'agents.yaml'}" in done
    assert isinstance(config.load("gates"), dict)


def test_time_arguments():
    now = timeparse.utcnow()
    assert now - timeparse.parse_since("24h", now) == timedelta(hours=24)
    assert timeparse.parse_since("2w", now) == now - timedelta(weeks=2)
    today = timeparse.parse_since("today")
    assert timeparse.parse_since("yesterday") < today <= now
    assert timeparse.parse_since("2024-01-15").astimezone().date().isoformat() == "2024-01-15"
    assert timeparse.parse_since("2024-01-15T10:00:00Z").hour == 10
    start, end = timeparse.parse_month("2024-12")
    assert start.astimezone().date().isoformat() == "2024-12-01"
    assert end.astimezone().date().isoformat() == "2025-01-01"
    for bad in ("tomorrowish", "2024-13-45", "-3d"):
        with pytest.raises(UsageError):
            timeparse.parse_since(bad)
    with pytest.raises(UsageError):
        timeparse.parse_month("2024-13")


def test_secrets_are_masked():
    text = ("token=abc123 ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaa AKIAABCDEFGHIJKLMNOP "
            "Authorization: Bearer abcdefghijkl --password hunter2")
    masked = log.mask_secrets(text)
    for secret in ("abc123", "ghp_aaaa", "AKIAABCDEFGHIJKLMNOP", "abcdefghijkl", "hunter2"):
        assert secret not in masked


def _exit_code(command, check=False):
    with pytest.raises(SystemExit) as stop:
        cli.run(command, check=check)
    return stop.value.code


@pytest.mark.parametrize("error, plain, check", [
    (UsageError("bad"), 2, 3), (NotFound("none"), 1, 3), (ConfigError("cfg"), 1, 3), (RuntimeError("boom"), 1, 3),
])
def test_exit_codes_by_error_class(monkeypatch, capsys, error, plain, check):
    @click.command()
    def main():
        raise error

    monkeypatch.setattr("sys.argv", ["x.py"])
    assert _exit_code(main) == plain
    assert _exit_code(main, check=True) == check
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_audit_and_lock(tdev):
    import json

    cli.audit("ok", evolution_id="evo-1", token="ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    entry = json.loads((tdev.history / "audit.log").read_text().splitlines()[-1])
    assert entry["result"] == "ok" and entry["evolution_id"] == "evo-1"
    assert "ghp_aaaa" not in json.dumps(entry)
    with cli.lock("backup"):
        with pytest.raises(Exception, match="already running"):
            with cli.lock("backup"):
                pass
    with cli.lock("backup"):
        pass
