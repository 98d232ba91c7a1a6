"""Taking an implement agent's change into the worktree (DESIGN §5), or refusing it with `bad-patch:`.

The change comes in one of three forms: a unified diff (`patch`, applied with `--recount` and a
three-way fallback), search/replace `edits`, or whole `files`; a local or command agent may also
have edited the worktree in place. Whatever the form, the worktree's diff against the cycle's start
is the change, and the patch rules hold for that diff: paths inside the target and outside `.git`,
no symlink, mode change or binary file, no file a prevention pattern names, no whole-file deletion
(unless evolution.allow_deletions), at most evolution.max_deleted_lines deleted lines and
evolution.max_patch_bytes bytes. A refused change leaves the worktree at HEAD.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lib import config
from lib.adapters import gitops
from lib.agents import AgentError
from lib.errors import ExternalError
from lib.evolution.contract import inside
from lib.quality import patterns
from lib.store import Store

#: git modes of a regular file; anything else (120000 symlink, 160000 submodule) is refused.
REGULAR_MODES = ("100644", "100755")


class BadPatch(AgentError):
    def __init__(self, why: str):
        super().__init__(f"bad-patch: {why}")


@dataclass
class Change:
    """What a cycle changed: the diff against the cycle's start and the repository paths it touches."""

    patch: str
    files: list[str]
    entries: list[dict] = field(default_factory=list)  # gitops.diff_entries: status, modes, line counts

    @property
    def empty(self) -> bool:
        return not self.files


def _path_rules(target: str, store: Store, files: list[str]) -> None:
    """Paths inside the target, never under .git, not named by a prevention pattern."""
    in_git = [name for name in files if ".git" in PurePosixPath(name).parts]
    if in_git:
        raise BadPatch(f"touches {', '.join(in_git[:3])} under .git")
    outside = [name for name in files if not inside(name, target)]
    if outside:
        raise BadPatch(f"touches {', '.join(outside[:3])} outside the target {target}")
    named = patterns.blocked(store, files, patterns.ANY)
    if named:
        raise BadPatch("touches " + ", ".join(f"{name} (prevention pattern {pattern['id']})"
                                              for name, pattern in named[:3]))


def _size_rule(patch: str) -> None:
    limit = int(config.settings()["evolution"]["max_patch_bytes"])
    size = len(patch.encode("utf-8", "replace"))
    if size > limit:
        raise BadPatch(f"the patch is {size} bytes, over evolution.max_patch_bytes ({limit})")


def checked_paths(worktree: Path, target: str, store: Store, patch: str) -> list[str]:
    """The paths a given patch touches, once it passed the rules on size, paths and prevention patterns."""
    _size_rule(patch)
    try:
        files = gitops.patch_paths(worktree, patch)
    except ExternalError as failure:
        raise BadPatch(f"not a patch git can read: {failure}") from None
    _path_rules(target, store, files)
    return files


def diff_rules(entries: list[dict]) -> None:
    """The rules only the worktree's diff can show (DESIGN §5): file kinds, modes and deletions."""
    rules = config.settings()["evolution"]
    for entry in entries:
        path, old, new = entry["path"], entry["old_mode"], entry["new_mode"]
        if "120000" in (old, new):
            raise BadPatch(f"{path}: creates or changes a symlink")
        if entry["status"] != "D" and new not in REGULAR_MODES:
            raise BadPatch(f"{path}: mode {new} is not a regular file")
        if entry["status"] == "M" and old != new:
            raise BadPatch(f"{path}: changes the file mode {old} -> {new}")
        if entry["status"] == "A" and new != "100644":
            raise BadPatch(f"{path}: a new file must not be executable (mode {new})")
        if entry["added"] is None:
            raise BadPatch(f"{path}: binary files are refused")
        if entry["status"] == "D" and not rules["allow_deletions"]:
            raise BadPatch(f"{path}: deletes a whole file (allowed only with evolution.allow_deletions: true)")
    deleted, limit = sum(e["deleted"] or 0 for e in entries), int(rules["max_deleted_lines"])
    if deleted > limit:
        raise BadPatch(f"deletes {deleted} lines, over evolution.max_deleted_lines ({limit})")


def _no_symlink_on_the_way(worktree: Path, name: str) -> Path:
    """worktree/name, refused when any part of the way (the file included) is a symlink: never followed."""
    path = worktree
    for part in PurePosixPath(name).parts:
        path = path / part
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                raise BadPatch(f"{name}: goes through the symlink {path.relative_to(worktree).as_posix()}")
        except FileNotFoundError:
            break
    return worktree / name


def _write(path: Path, text: str) -> None:
    """Write a regular file without following a symlink that appeared meanwhile (O_NOFOLLOW)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def _read(path: Path) -> str:
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(descriptor, encoding="utf-8", newline="") as handle:
        return handle.read()


def apply_edits(worktree: Path, target: str, store: Store, edits: list[dict]) -> None:
    """Search/replace edits: each search text occurs exactly once in its file; an empty search on a
    missing path creates the file."""
    _path_rules(target, store, [edit["path"] for edit in edits])
    for number, edit in enumerate(edits, 1):
        path = _no_symlink_on_the_way(worktree, edit["path"])
        if edit["search"] == "":
            if path.exists():
                raise BadPatch(f"edit {number}: empty search on {edit['path']}, which exists (only a new file "
                               "may be created that way)")
            _write(path, edit["replace"])
            continue
        try:
            text = _read(path)
        except (FileNotFoundError, IsADirectoryError):
            raise BadPatch(f"edit {number}: {edit['path']} is not a file") from None
        except UnicodeDecodeError:
            raise BadPatch(f"edit {number}: {edit['path']} is not UTF-8 text") from None
        found = text.count(edit["search"])
        if found != 1:
            raise BadPatch(f"edit {number}: the search text occurs {found} times in {edit['path']}, not once")
        _write(path, text.replace(edit["search"], edit["replace"], 1))


def write_files(worktree: Path, target: str, store: Store, files: list[dict]) -> None:
    """Whole new contents; never through a symlink."""
    _path_rules(target, store, [entry["path"] for entry in files])
    for entry in files:
        path = _no_symlink_on_the_way(worktree, entry["path"])
        if path.is_dir():
            raise BadPatch(f"{entry['path']} is a folder")
        _write(path, entry["content"])


def _apply_form(worktree: Path, target: str, store: Store, output: dict) -> None:
    patch = output.get("patch")
    if patch is not None and patch.strip():
        checked_paths(worktree, target, store, patch)
        try:
            gitops.apply_agent_patch(worktree, patch)
        except ExternalError as failure:
            raise BadPatch(f"does not apply: {failure}") from None
    elif output.get("edits") is not None:
        apply_edits(worktree, target, store, output["edits"])
    elif output.get("files") is not None:
        write_files(worktree, target, store, output["files"])


def apply_output(worktree: Path, target: str, store: Store, output: dict) -> Change:
    """Apply the output's form (or take the agent's in-place edits); the worktree's diff is the change.

    The rules hold for that whole diff, not only for what was sent: a local or command agent of any
    phase may have edited the worktree beside (or instead of) it. A given patch is also checked before
    it is applied, so a patch with bad paths never touches the worktree.
    """
    try:
        _apply_form(worktree, target, store, output)
        entries = gitops.diff_entries(worktree)
        if not entries:
            return Change("", [])
        files = [entry["path"] for entry in entries]
        _path_rules(target, store, files)
        diff_rules(entries)
        diff = gitops.worktree_diff(worktree)
        _size_rule(diff)
        return Change(diff, files, entries)
    except BadPatch:
        gitops.discard_changes(worktree)
        raise
