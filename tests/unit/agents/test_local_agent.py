"""The built-in research agent reads the runner's measurement instead of measuring again."""

from __future__ import annotations

from pathlib import Path

from lib.agents import local
from lib.quality import measure


def test_research_reads_the_runners_measurement(tmp_path, monkeypatch):
    monkeypatch.setenv("TDEV_HISTORY_DIR", str(tmp_path / "history"))
    worktree = tmp_path / "worktree"
    (worktree / "pkg").mkdir(parents=True)
    (worktree / ".git").mkdir()
    (worktree / "pkg" / "a.py").write_text('"""A."""\nimport os\n')
    before = measure.summary(measure.measure(worktree / "pkg"))  # the runner's "measure before"

    def must_not_run(*_args, **_kwargs):
        raise AssertionError("the research agent measured again")

    monkeypatch.setattr(measure, "measure_source", must_not_run)
    monkeypatch.setattr(measure, "start_lint", must_not_run)
    output = local.research({"worktree": str(worktree), "target": "pkg", "metrics": before})
    assert output["metrics"] == before and before["lint"] == 1
    assert output["findings"] == [{"path": str(Path("pkg") / "a.py"), "line": 2, "rule": "F401",
                                   "message": output["findings"][0]["message"]}]
    assert set(output["per_file"]) == {"a.py"}
