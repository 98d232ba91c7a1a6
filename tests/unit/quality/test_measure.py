"""The measurement: radon's figures from one tokenize pass, kept per content, under the target's own lint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from radon.metrics import mi_visit
from radon.raw import analyze

from lib.quality import measure

ROOT = Path(__file__).resolve().parents[3]
TABULATE = Path("/work/real/tabulate")
TRICKY = '''"""Module docstring
over two lines."""
import os  # a comment
x = 1; y = 2
if x: y = 3
if x: y = 4; z = 5

# a lone comment
d = {"a": 1,
     # a comment inside brackets
     "b": 2}
s = "one" \\
    "two"


def f(a: int) -> int:
    """One line."""
    return a


class C:
    """Two
    lines."""
    value: int = 3
    text = """a string
that spans"""
'''


def _real_files() -> list[Path]:
    files = sorted((ROOT / "lib").rglob("*.py"))
    if TABULATE.is_dir():
        files += [TABULATE / "tabulate" / "__init__.py", *sorted((TABULATE / "test").glob("*.py"))]
    return files


def test_raw_counts_are_radons_on_tricky_code():
    raw = analyze(TRICKY)
    assert measure.raw_counts(TRICKY) == (raw.sloc, raw.lloc, raw.comments, raw.multi)


def test_raw_counts_and_maintainability_are_radons_on_real_files():
    files = _real_files()
    assert len(files) > 80
    for path in files:
        source = path.read_text(encoding="utf-8")
        raw = analyze(source)
        assert measure.raw_counts(source) == (raw.sloc, raw.lloc, raw.comments, raw.multi), path
        assert measure.measure_source(source)["maintainability"] == round(mi_visit(source, True), 2), path


def test_a_file_that_does_not_parse_has_a_syntax_error():
    assert "syntax_error" in measure.measure_source("def broken(:\n")


@pytest.fixture
def history(tmp_path, monkeypatch):
    monkeypatch.setenv("TDEV_HISTORY_DIR", str(tmp_path / "history"))
    return tmp_path / "history"


def _tree(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / ".git").mkdir()
    (repo / "pkg" / "a.py").write_text('"""A."""\nimport os\n\n\ndef f(x):\n    return zip(x, x)\n')
    (repo / "pkg" / "b.py").write_text('"""B."""\n\n\ndef g():\n    """G."""\n    return 1\n')
    return repo


def test_an_unchanged_file_is_measured_once_across_calls_and_trees(tmp_path, history, monkeypatch):
    repo = _tree(tmp_path)
    first = measure.measure(repo / "pkg")
    assert first["files"] == 2 and first["lint"] == 2  # F401 and B905 under the toolkit's rules
    assert list((history / "measure_cache").rglob("*.json"))

    def must_not_run(*_args, **_kwargs):
        raise AssertionError("measured twice")

    monkeypatch.setattr(measure, "measure_source", must_not_run)
    monkeypatch.setattr(measure, "start_lint", must_not_run)
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy)  # the same content elsewhere (another worktree): still no measurement
    assert measure.summary(measure.measure(copy / "pkg")) == measure.summary(first)
    assert measure.measure(repo / "pkg")["findings"] == first["findings"]


def test_a_changed_file_alone_is_measured_again(tmp_path, history, monkeypatch):
    repo = _tree(tmp_path)
    measure.measure(repo / "pkg")
    (repo / "pkg" / "b.py").write_text('"""B."""\nimport sys\n')
    measured, linted = [], []
    real_source, real_lint = measure.measure_source, measure.start_lint
    monkeypatch.setattr(measure, "measure_source", lambda source: measured.append(source) or real_source(source))
    monkeypatch.setattr(measure, "start_lint", lambda files, setup: linted.extend(files) or real_lint(files, setup))
    after = measure.measure(repo / "pkg")
    assert measured == ['"""B."""\nimport sys\n'] and linted == [str(repo / "pkg" / "b.py")]
    assert after["per_file"]["b.py"]["lint"] == 1


def test_a_hit_renews_its_entry_so_that_pruning_keeps_what_is_still_used(tmp_path, history):
    repo = _tree(tmp_path)
    measure.measure(repo / "pkg")
    entries = sorted((history / "measure_cache").rglob("*.json"))
    long_ago = time.time() - 40 * 86400
    for entry in entries:
        os.utime(entry, (long_ago, long_ago))
    assert sorted(measure.unused_cache_entries(30 * 86400)) == entries
    (repo / "pkg" / "b.py").unlink()  # a.py is met again, b.py no longer
    measure.measure(repo / "pkg")
    unused = measure.unused_cache_entries(30 * 86400)
    assert len(unused) == 1 and json.loads(unused[0].read_bytes())["figures"]["doc_missing"] == []  # b.py's
    recent = time.time() - 3600
    for entry in entries:
        os.utime(entry, (recent, recent))
    measure.measure(repo / "pkg")  # a hit within the day does not write again
    assert all(entry.stat().st_mtime == pytest.approx(recent) for entry in entries)


def test_a_corrupt_cache_entry_is_a_miss(tmp_path, history):
    repo = _tree(tmp_path)
    first = measure.measure(repo / "pkg")
    for entry in (history / "measure_cache").rglob("*.json"):
        entry.write_text("{not json")
    assert measure.summary(measure.measure(repo / "pkg")) == measure.summary(first)


def test_the_targets_own_ruff_configuration_counts_and_keys_the_cache(tmp_path, history):
    repo = _tree(tmp_path)
    assert measure.own_ruff_config(repo / "pkg") is None
    default = measure.lint_setup(repo / "pkg")
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.ruff.lint]\nextend-select = ["B"]\n'
                                         'ignore = ["B905"]\n')
    assert measure.own_ruff_config(repo / "pkg") == repo / "pyproject.toml"
    own = measure.lint_setup(repo / "pkg")
    assert own.key != default.key
    measured = measure.measure(repo / "pkg")
    assert measured["lint"] == 1 and [f["rule"] for f in measured["findings"]] == ["F401"]


def test_ruff_toml_counts_and_a_pyproject_without_ruff_does_not(tmp_path):
    repo = _tree(tmp_path)
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert measure.own_ruff_config(repo / "pkg") is None
    (repo / "pkg" / ".ruff.toml").write_text("line-length = 100\n")
    assert measure.own_ruff_config(repo / "pkg") == repo / "pkg" / ".ruff.toml"
    (repo / "pkg" / ".ruff.toml").unlink()
    (repo / "ruff.toml").write_text("line-length = 100\n")
    assert measure.own_ruff_config(repo / "pkg" / "a.py") == repo / "ruff.toml"


def test_the_search_stops_at_the_repository_root(tmp_path):
    (tmp_path / "ruff.toml").write_text("line-length = 100\n")  # above the repository: not the target's
    repo = _tree(tmp_path)
    assert measure.own_ruff_config(repo / "pkg") is None


@pytest.mark.skipif(not TABULATE.is_dir(), reason="needs the real tabulate checkout")
def test_a_real_projects_lint_count_is_its_own_ruff_check(tmp_path, history):
    copy = tmp_path / "tabulate"
    shutil.copytree(TABULATE, copy, ignore=shutil.ignore_patterns(".git", ".ruff_cache"))
    subprocess.run(["git", "init", "-q", str(copy)], check=True)
    own = subprocess.run([measure.ruff_bin(), "check", "--no-cache", "--output-format", "json", "--exit-zero",
                          "tabulate"], cwd=copy, capture_output=True, text=True, check=True)
    expected = sorted((Path(f["filename"]).name, f["location"]["row"], f["code"]) for f in json.loads(own.stdout))
    measured = measure.measure(copy / "tabulate")
    assert sorted((Path(f["path"]).name, f["line"], f["rule"]) for f in measured["findings"]) == expected
    assert measured["lint"] == len(expected) and "B905" not in {f["rule"] for f in measured["findings"]}


def test_every_focus_is_scored_and_has_its_metrics():
    from lib.quality import FOCUS_METRICS, FOCUSES

    assert tuple(measure.FOCUS_SCORES) == FOCUSES and tuple(FOCUS_METRICS) == FOCUSES


def test_the_same_content_elsewhere_in_the_repository_is_measured_for_its_place(tmp_path, history, monkeypatch):
    """ruff's per-file-ignores can treat it differently there: the cache keys a file by its place too."""
    repo = _tree(tmp_path)
    (repo / "ruff.toml").write_text('[lint.per-file-ignores]\n"pkg/b.py" = ["F401"]\n')
    (repo / "pkg" / "b.py").write_text((repo / "pkg" / "a.py").read_text())
    measured = measure.measure(repo / "pkg")
    assert measured["per_file"]["a.py"]["lint"] == 1 and measured["per_file"]["b.py"]["lint"] == 0
