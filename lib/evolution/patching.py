"""Taking an implement agent's change into the worktree (DESIGN §5), or refusing it with `bad-patch:`.

A patch is refused when it is too large, touches a path outside the target or a file that a
prevention pattern names, or does not apply. In-place edits of a local or command agent are held
to the same rules through the worktree's own diff. A refused change leaves the worktree at HEAD.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lib import config
from lib.adapters import gitops
from lib.agents import AgentError
from lib.errors import ExternalError
from lib.evolution.contract import inside
from lib.quality import patterns
from lib.store import Store


class BadPatch(AgentError):
    def __init__(self, why: str):
        super().__init__(f"bad-patch: {why}")


@dataclass
class Change:
    """What a cycle changed: the diff against the cycle's start and the repository paths it touches."""

    patch: str
    files: list[str]

    @property
    def empty(self) -> bool:
        return not self.files


def checked_paths(worktree: Path, target: str, store: Store, patch: str) -> list[str]:
    """The paths the patch touches, once it passed the rules on size, paths and prevention patterns."""
    limit = int(config.settings()["evolution"]["max_patch_bytes"])
    size = len(patch.encode("utf-8", "replace"))
    if size > limit:
        raise BadPatch(f"the patch is {size} bytes, over evolution.max_patch_bytes ({limit})")
    try:
        files = gitops.patch_paths(worktree, patch)
    except ExternalError as failure:
        raise BadPatch(f"not a patch git can read: {failure}") from None
    outside = [name for name in files if not inside(name, target)]
    if outside:
        raise BadPatch(f"touches {', '.join(outside[:3])} outside the target {target}")
    named = patterns.blocked(store, files, patterns.ANY)
    if named:
        raise BadPatch("touches " + ", ".join(f"{name} (prevention pattern {pattern['id']})"
                                              for name, pattern in named[:3]))
    return files


def take(worktree: Path, target: str, store: Store, output: dict) -> Change:
    """Apply output.patch, or take the agent's in-place edits; the worktree's diff is the change.

    The rules hold for that whole diff, not only for the patch: a local or command agent of any
    phase may have edited the worktree beside (or instead of) what it sent. A given patch is also
    checked before it is applied, so a refused one never touches the worktree.
    """
    patch = output.get("patch")
    if patch is not None and patch.strip():
        checked_paths(worktree, target, store, patch)
        try:
            gitops.apply_patch(worktree, patch, check_only=True)
        except ExternalError as failure:
            raise BadPatch(f"does not apply: {failure}") from None
        gitops.apply_patch(worktree, patch)
    diff = gitops.worktree_diff(worktree)
    if not diff.strip():
        return Change("", [])
    try:
        return Change(diff, checked_paths(worktree, target, store, diff))
    except BadPatch:
        gitops.discard_changes(worktree)
        raise
