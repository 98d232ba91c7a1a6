"""Escapes (DESIGN §5): an agent on this machine that changed the operator's checkout or its git settings.

`local` and `command` agents run as the operator's user and could write anywhere; nothing stops
them, so the runner detects it. Before and after each such phase it notes the operator's
checkout (`git status --porcelain`, with a digest of every changed or untracked file, so that
a second edit of an already dirty file shows too), `.git/config` and every file under
`.git/hooks` (a hook would run at the runner's own commit). Any difference fails the task with
`escaped: <agent> changed <path> outside its worktree`, and nothing is committed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from lib.errors import ExternalError

#: Files larger than this are compared by size and modification time, not read.
DIGEST_LIMIT_BYTES = 16 * 1024 * 1024


def snapshot(repo: Path, own: tuple[Path, ...] = ()) -> dict[str, str]:
    """{path: state} of what an escape could change: the checkout's changed and untracked files
    (paths relative to repo), `.git/config` and `.git/hooks/...`. Files under `own` (the runner's
    history, where it writes during a phase, when an installation keeps it inside the checkout) are left out."""
    common = Path(_git(repo, "rev-parse", "--git-common-dir").strip())
    common = common if common.is_absolute() else repo / common
    state = {}
    entries = _git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all").split("\0")
    pending = iter(entries)
    for entry in pending:
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        if "R" in code or "C" in code:
            next(pending, None)  # the original path of a rename or copy
        if not any((repo / path).is_relative_to(folder) for folder in own):
            state[path] = f"{code} {_digest(repo / path)}"
    state[".git/config"] = _digest(common / "config")
    hooks = common / "hooks"
    for hook in sorted(hooks.rglob("*")) if hooks.is_dir() else ():
        if not hook.is_dir():
            state[f".git/hooks/{hook.relative_to(hooks).as_posix()}"] = _digest(hook)
    return state


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The paths whose state differs between two snapshots, sorted."""
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


def escaped(agent: str, before: dict[str, str], after: dict[str, str]) -> str | None:
    """The task's error line when the agent changed something outside its worktree, else None."""
    paths = changed(before, after)
    if not paths:
        return None
    more = f" (and {len(paths) - 1} more)" if len(paths) > 1 else ""
    return f"escaped: {agent} changed {paths[0]} outside its worktree{more}"


def _digest(path: Path) -> str:
    """A file's content digest (a symlink: its target; gone: 'absent'; large: size and mtime)."""
    try:
        if path.is_symlink():
            return f"link {os.readlink(path)}"
        info = path.stat()
        if not path.is_file():
            return "not a file"
        if info.st_size > DIGEST_LIMIT_BYTES:
            return f"size {info.st_size} mtime {info.st_mtime_ns} mode {info.st_mode:o}"
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return f"sha256 {digest.hexdigest()} mode {info.st_mode:o}"
    except FileNotFoundError:
        return "absent"
    except OSError as failure:
        return f"unreadable {failure.errno}"


def _git(repo: Path, *args: str) -> str:
    """git's output as text (undecodable file names kept as surrogates, never an error)."""
    try:
        result = subprocess.run(["git", *args], cwd=repo, capture_output=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as failure:
        raise ExternalError(f"git {args[0]} in {repo}: {failure}") from None
    if result.returncode != 0:
        last = (result.stderr.decode(errors="replace").strip().splitlines() or ["failed"])[-1]
        raise ExternalError(f"git {args[0]} in {repo}: {last}")
    return result.stdout.decode("utf-8", "surrogateescape")
