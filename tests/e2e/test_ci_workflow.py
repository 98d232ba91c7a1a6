"""The GitHub Actions workflow runs what .ci/run runs, then the quality gates of config/gates.yaml."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
# Shell plumbing of .ci/run that a hosted runner does differently (virtualenv, exit-code handling).
PLUMBING = ("set ", "cd ", ". ", "python3 -m venv", "code=", "if ", "echo ", "exit ", "fi", "#", "#!")


def ci_run_commands() -> list[str]:
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    return [line for line in lines if line and not line.startswith(PLUMBING)]


def workflow_steps() -> list[dict]:
    document = yaml.safe_load(WORKFLOW.read_text())
    assert document["name"]
    triggers = document.get("on", document.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    (job,) = document["jobs"].values()
    assert job["runs-on"] and job["steps"]
    for step in job["steps"]:
        assert ("uses" in step) != ("run" in step), step
    return job["steps"]


def run_lines(steps: list[dict]) -> list[str]:
    return [line.strip() for step in steps if "run" in step for line in step["run"].splitlines() if line.strip()]


def test_workflow_is_valid_yaml_and_runs_what_ci_runs():
    commands = run_lines(workflow_steps())
    expected = ci_run_commands()
    assert "python -m pytest -q -p no:cacheprovider" in expected and "ruff check ." in expected
    positions = [commands.index(command) for command in expected]
    assert positions == sorted(positions), "the same order as .ci/run"


def test_quality_gates_run_after_the_tests():
    steps = workflow_steps()
    commands = run_lines(steps)
    gates = next(c for c in commands if "scripts/check_metrics.py" in c)
    assert shlex.split(gates)[:2] == ["python", "scripts/check_metrics.py"]
    assert "--gates-only" in gates
    assert commands.index(gates) > commands.index("python -m pytest -q -p no:cacheprovider")
    step = next(s for s in steps if "scripts/check_metrics.py" in s.get("run", ""))
    assert "config/gates.yaml" in step["name"]
    assert "config/gates.yaml" in WORKFLOW.read_text().split("name:")[0]  # the header says where thresholds live


def test_python_and_actions_are_pinned():
    steps = workflow_steps()
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["python-version"] == "3.11"
    assert all("@" in s["uses"] for s in steps if "uses" in s)
