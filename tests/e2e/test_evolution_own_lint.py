"""End to end, DESIGN §5 "Lint is the target's own": on a copy of a real project (python-tabulate, whose
pyproject configures ruff and ignores B905), the runner counts what its own `ruff check` reports, and a
quality evolution by the built-in agents fixes the safe ones under that configuration."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from lib.quality import measure
from lib.store import open_store
from tests.conftest import git

TABULATE = Path("/work/real/tabulate")
pytestmark = pytest.mark.skipif(not TABULATE.is_dir(), reason="needs the real tabulate checkout")


@pytest.fixture
def tabulate_repo(tmp_path) -> Path:
    """A copy of tabulate as its own repository, pushed to a bare origin."""
    origin, work = tmp_path / "origin.git", tmp_path / "tabulate"
    shutil.copytree(TABULATE, work, ignore=shutil.ignore_patterns(".git", ".ruff_cache", "__pycache__"))
    subprocess.run(["git", "init", "--bare", "-b", "main", str(origin)], check=True, capture_output=True)
    subprocess.run(["git", "init", "-b", "main", str(work)], check=True, capture_output=True)
    for key, value in (("user.email", "test@example.com"), ("user.name", "Test")):
        git(work, "config", key, value)
    git(work, "add", "-A")
    git(work, "commit", "-m", "tabulate")
    git(work, "remote", "add", "origin", str(origin))
    git(work, "push", "-u", "origin", "main")
    return work


def own_findings(repo: Path, *extra: str) -> list[dict]:
    result = subprocess.run([measure.ruff_bin(), "check", "--no-cache", "--output-format", "json", "--exit-zero",
                             *extra, "tabulate"], cwd=repo, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_a_quality_evolution_counts_and_fixes_under_the_targets_own_ruff_configuration(tdev, tabulate_repo):
    findings = own_findings(tabulate_repo)
    fixable = [f for f in findings if (f.get("fix") or {}).get("applicability") == "safe"]
    assert findings and fixable  # the real project has findings of its own, some safely fixable
    result = tdev.run("run_evolution.py", "--target", str(tabulate_repo / "tabulate"), "--focus", "quality",
                      "--monitor", "--dry-run", env={"EVOLUTION_TEST_COMMAND": "none"}, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    record = open_store().list_evolutions()[0]
    assert record["status"] == "succeeded"
    assert record["metrics_before"]["lint"] == len(findings)  # its configuration: no B905 counted against it
    assert record["metrics_after"]["lint"] == len(findings) - len(fixable)
    implement = next(t for t in open_store().list_tasks(record["id"]) if t["phase"] == "implement")
    artifact = json.loads((tdev.history / record["id"] / "tasks" / f"{implement['id']}.json").read_text())
    assert "its own rules (pyproject.toml)" in artifact["output"]["summary"]
    changed = {f["filename"] for f in fixable}
    cached = list((tdev.history / "measure_cache").rglob("*.json"))
    assert len(cached) == record["metrics_before"]["files"] + len(changed)  # one measurement per content
    assert git(tabulate_repo, "status", "--porcelain") == ""  # a dry run: the project is untouched
    assert own_findings(tabulate_repo) == findings
