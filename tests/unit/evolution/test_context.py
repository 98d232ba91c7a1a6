"""What an agent is shown of the target (DESIGN §5 `files` and `map`): order, budget, symlinks, map."""

from __future__ import annotations

import json
from pathlib import Path

from lib.evolution import context

UNDOCUMENTED = "def one(a):\n    return a\n\n\ndef two(b):\n    return b\n\n\ndef three(c):\n    return c\n"
HALF = '"""Half."""\n\n\ndef four(d):\n    """Four."""\n    return d\n\n\ndef five(e):\n    return e\n'
DOCUMENTED = ('"""All of it."""\n\n\ndef six(f: int = 1) -> int:\n'
              '    """Six things.\n\n    More.\n    """\n    return f\n')


def package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def paths(entries: list[dict]) -> list[str]:
    return [entry["path"] for entry in entries]


def assert_every_file_once(view: dict, names: list[str]) -> None:
    shown = paths(view["files"]) + paths(view["map"])
    assert sorted(shown) == sorted(names)


def test_research_puts_the_files_with_most_to_gain_first(tmp_path):
    root = package(tmp_path, {"pkg/a_done.py": DOCUMENTED, "pkg/b_half.py": HALF, "pkg/c_none.py": UNDOCUMENTED})
    view = context.build(root, "pkg", "research", "docs", [], 200000)
    assert paths(view["files"]) == ["pkg/c_none.py", "pkg/b_half.py", "pkg/a_done.py"]
    assert view["files"][0]["content"] == UNDOCUMENTED and view["map"] == []


def test_implement_shows_the_plan_then_what_it_imports(tmp_path):
    root = package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/main.py": "import os\nfrom pkg import helpers\nfrom .sub.deep import thing\nfrom . import other\n",
        "pkg/helpers.py": HALF, "pkg/other.py": DOCUMENTED, "pkg/sub/__init__.py": "",
        "pkg/sub/deep.py": "thing = 1\n", "pkg/unrelated.py": UNDOCUMENTED})
    view = context.build(root, "pkg", "implement", "docs", ["pkg/main.py"], 200000)
    assert paths(view["files"]) == ["pkg/main.py", "pkg/__init__.py", "pkg/helpers.py", "pkg/sub/deep.py",
                                    "pkg/other.py"]
    assert paths(view["map"]) == ["pkg/sub/__init__.py", "pkg/unrelated.py"]


def test_the_budget_bounds_contents_and_the_map_and_every_file_stays_visible(tmp_path):
    files = {f"pkg/mod{index:02}.py": UNDOCUMENTED * 20 for index in range(30)}
    root = package(tmp_path, files)
    budget = 8000
    view = context.build(root, "pkg", "plan", "docs", [], budget)
    used = sum(len(entry["content"].encode()) for entry in view["files"])
    assert 0 < used <= budget
    assert len(json.dumps(view["map"]).encode()) <= budget - used
    assert_every_file_once(view, list(files))
    assert all(entry["lines"] == 200 for entry in view["map"])
    # the least relevant entries shed detail first: the first map entry keeps more than the last
    assert len(json.dumps(view["map"][0])) >= len(json.dumps(view["map"][-1]))


def test_a_zero_budget_still_lists_every_path(tmp_path):
    files = {f"pkg/mod{index}.py": UNDOCUMENTED for index in range(5)}
    view = context.build(package(tmp_path, files), "pkg", "research", "docs", [], 0)
    assert view["files"] == []
    assert_every_file_once(view, list(files))
    assert all(entry["symbols"] == [] for entry in view["map"])


def test_symlinks_are_listed_never_followed(tmp_path):
    outside = tmp_path / "outside"
    package(outside, {"secret.py": "TOKEN = 'do-not-read'\n", "lib/inner.py": "SECRET = 'nor-this'\n"})
    root = package(tmp_path / "repo", {"pkg/real.py": DOCUMENTED})
    (root / "pkg" / "link.py").symlink_to(outside / "secret.py")
    (root / "pkg" / "linked_dir").symlink_to(outside / "lib")
    planned = ["pkg/link.py", "pkg/linked_dir/inner.py", "pkg/real.py"]
    for phase in ("research", "implement"):
        view = context.build(root, "pkg", phase, "docs", planned, 200000)
        text = json.dumps(view)
        assert "do-not-read" not in text and "nor-this" not in text
        assert {"path": "pkg/link.py", "content": None, "symlink": True} in view["files"]
        assert {"path": "pkg/linked_dir/inner.py", "content": None, "symlink": True} in view["files"]
        assert "pkg/real.py" in paths(view["files"])
    unplanned = context.build(root, "pkg", "implement", "docs", ["pkg/real.py"], 200000)
    assert unplanned["files"] == [{"path": "pkg/real.py", "content": DOCUMENTED},
                                  {"path": "pkg/link.py", "content": None, "symlink": True}]


def test_the_map_outlines_symbols_and_says_when_a_file_does_not_parse(tmp_path):
    root = package(tmp_path, {
        "pkg/api.py": DOCUMENTED + '\n\nclass Store(Base, metaclass=Meta):\n    """Keeps things."""\n\n'
                                   "    def put(self, key):\n        pass\n\n\nasync def fetch(url, *, timeout=3):\n"
                                   "    pass\n",
        "pkg/broken.py": "def oops(:\n", "pkg/plan.py": "x = 1\n"})
    view = context.build(root, "pkg", "implement", "docs", ["pkg/plan.py"], 200000)
    outline = {entry["path"]: entry for entry in view["map"]}
    assert outline["pkg/api.py"]["symbols"] == [
        {"line": 4, "signature": "def six(f: int=1) -> int", "doc": "Six things."},
        {"line": 12, "signature": "class Store(Base, metaclass=Meta)", "doc": "Keeps things."},
        {"line": 19, "signature": "async def fetch(url, *, timeout=3)"}]
    assert outline["pkg/broken.py"]["symbols"] == [] and "does not parse" in outline["pkg/broken.py"]["error"]
    assert outline["pkg/broken.py"]["lines"] == 1


def test_paths_outside_the_target_are_never_read(tmp_path):
    root = package(tmp_path, {"pkg/a.py": "a = 1\n", "other/b.py": "b = 2\n"})
    planned = ["other/b.py", "../etc/passwd", "pkg/\x00.py", "pkg/a.py"]
    view = context.build(root, "pkg", "implement", "docs", planned, 200000)
    assert paths(view["files"]) == ["pkg/a.py"] and view["map"] == []
