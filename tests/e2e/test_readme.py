"""README's two set-up commands stay true: the main job runs on the embedded default and the
test command is the one CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from lib.store import open_store

ROOT = Path(__file__).resolve().parents[2]


def setup_commands() -> list[str]:
    section = (ROOT / "README.md").read_text().split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, re.S)[:2]


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_one():
    main_job, tests = setup_commands()
    assert "pip install -r requirements.txt" in main_job and "--dry-run --monitor" in main_job
    assert "pip install -r requirements-dev.txt" in tests and "python -m pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text()
    assert "requirements-dev.txt" in ci and "python -m pytest" in ci


def test_main_job_on_the_embedded_default(tdev):
    """The main job after its install step, as a fresh machine runs it: exit 0, a succeeded evolution."""
    main_job, _ = setup_commands()
    steps = [step.strip() for step in main_job.split("&&")]
    job = " && ".join(step for step in steps if "python scripts/" in step)
    env = {**tdev.env, "PATH": f"{Path(sys.executable).parent}:{tdev.env.get('PATH', '')}"}  # the venv's python
    result = subprocess.run(["bash", "-c", job], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (record,) = open_store().list_evolutions()
    assert record["status"] == "succeeded" and record["dry_run"] is True
    assert record["target"] == str(ROOT / "lib")
    assert "HEALTH OK" in result.stdout
