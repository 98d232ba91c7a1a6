"""lib/evolution/patching.py: the patch rules on the worktree's diff, whatever the form (DESIGN §5), on a
real git repository. A refused change leaves the worktree at HEAD."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lib import config
from lib.evolution import patching
from lib.store import open_store
from tests.conftest import git

TARGET = "pkg"


@pytest.fixture
def repo(tmp_path, tdev) -> Path:
    root = tmp_path / "r"
    (root / TARGET).mkdir(parents=True)
    (root / TARGET / "m.py").write_text("".join(f"X{n} = {n}\n" for n in range(10)))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "i")
    return root


@pytest.fixture
def store(tdev):
    config.settings.cache_clear()  # each test reads its own installation's settings, and leaves none behind
    opened = open_store(create=True)
    yield opened
    opened.close()
    config.settings.cache_clear()


def apply(repo: Path, store, output: dict) -> patching.Change:
    return patching.apply_output(repo, TARGET, store, output)


def assert_refused(repo: Path, store, output: dict, why: str) -> None:
    with pytest.raises(patching.BadPatch) as refused:
        apply(repo, store, output)
    assert refused.value.message == f"bad-patch: {why}"
    assert git(repo, "status", "--porcelain") == ""  # back at HEAD


def test_a_binary_file_is_refused(repo, store):
    (repo / TARGET / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    assert_refused(repo, store, {"changed_files": []}, f"{TARGET}/blob.bin: binary files are refused")


def test_a_new_executable_file_is_refused(repo, store):
    (repo / TARGET / "run.py").write_text("print(1)\n")
    os.chmod(repo / TARGET / "run.py", 0o755)
    assert_refused(repo, store, {"changed_files": []}, f"{TARGET}/run.py: a new file must not be executable "
                                                       "(mode 100755)")


def test_a_path_under_git_is_refused_before_anything_is_written(repo, store):
    assert_refused(repo, store, {"files": [{"path": f"{TARGET}/.git/config", "content": "x"}]},
                   f"touches {TARGET}/.git/config under .git")


def test_deletions_follow_the_settings(repo, store, tdev):
    (repo / TARGET / "m.py").unlink()
    assert_refused(repo, store, {"changed_files": []}, f"{TARGET}/m.py: deletes a whole file (allowed only with "
                                                       "evolution.allow_deletions: true)")
    tdev.write_config("settings", "evolution:\n  allow_deletions: true\n")
    config.settings.cache_clear()
    (repo / TARGET / "m.py").unlink()
    change = apply(repo, store, {"changed_files": []})
    assert change.files == [f"{TARGET}/m.py"] and change.entries[0]["status"] == "D"


def test_the_forms_change_the_worktree_and_the_diff_is_the_change(repo, store):
    change = apply(repo, store, {"edits": [{"path": f"{TARGET}/m.py", "search": "X3 = 3\n", "replace": "X3 = 33\n"}]})
    assert change.files == [f"{TARGET}/m.py"] and "+X3 = 33" in change.patch
    git(repo, "reset", "-q", "--hard")
    change = apply(repo, store, {"files": [{"path": f"{TARGET}/sub/new.py", "content": "Y = 1\n"}]})
    assert change.files == [f"{TARGET}/sub/new.py"] and change.entries[0]["status"] == "A"


def test_a_path_outside_the_target_is_refused(repo, store):
    assert_refused(repo, store, {"files": [{"path": "elsewhere.py", "content": "x = 1\n"}]},
                   f"touches elsewhere.py outside the target {TARGET}")


def test_an_edit_whose_search_text_is_not_there_exactly_once_is_refused(repo, store):
    assert_refused(repo, store, {"edits": [{"path": f"{TARGET}/m.py", "search": " = ", "replace": "="}]},
                   f"edit 1: the search text occurs 10 times in {TARGET}/m.py, not once")
    assert_refused(repo, store, {"edits": [{"path": f"{TARGET}/m.py", "search": "", "replace": "x"}]},
                   f"edit 1: empty search on {TARGET}/m.py, which exists (only a new file may be created that way)")


def test_a_write_through_a_symlink_is_refused_and_its_target_untouched(repo, store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / TARGET / "link").symlink_to(outside)
    with pytest.raises(patching.BadPatch, match=f"{TARGET}/link/x.py: goes through the symlink {TARGET}/link"):
        apply(repo, store, {"files": [{"path": f"{TARGET}/link/x.py", "content": "x = 1\n"}]})
    assert list(outside.iterdir()) == []


def test_limits_on_size_and_deleted_lines_come_from_the_settings(repo, store, tdev):
    tdev.write_config("settings", "evolution:\n  max_patch_bytes: 100\n  max_deleted_lines: 2\n")
    config.settings.cache_clear()
    refused = {"files": [{"path": f"{TARGET}/big.py", "content": "A = 1\n" * 50}]}
    with pytest.raises(patching.BadPatch, match=r"the patch is \d+ bytes, over evolution.max_patch_bytes \(100\)"):
        apply(repo, store, refused)
    assert_refused(repo, store, {"files": [{"path": f"{TARGET}/m.py", "content": "X0 = 0\n"}]},
                   "deletes 9 lines, over evolution.max_deleted_lines (2)")


def test_an_agent_that_changed_nothing_gives_an_empty_change(repo, store):
    change = apply(repo, store, {"changed_files": []})
    assert change.empty and change.patch == "" and change.files == []
