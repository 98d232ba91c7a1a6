"""git, as the evolution cycle and the clean-up commands use it (worktrees, auto branches)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime
from pathlib import Path

from lib.errors import ExternalError, NotFound

AUTO_PREFIX = "tdev/auto/"


def git(cwd: Path, *args: str, check: bool = True, timeout: float = 300, stdin: str | None = None,
        strip: bool = True) -> str:
    """Run git and return stdout (stripped unless it is a patch); a failure becomes one ExternalError line."""
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                                input=stdin)
    except FileNotFoundError:
        raise ExternalError("git is not installed", "install git (apt-get install git)") from None
    except subprocess.TimeoutExpired:
        raise ExternalError(f"git {args[0]} timed out after {timeout:g}s in {cwd}") from None
    if check and result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["failed"])[-1]
        raise ExternalError(f"git {' '.join(args[:2])} in {cwd}: {last}")
    return result.stdout.strip() if strip else result.stdout


def repo_root(path: Path) -> Path:
    """The top of the git repository holding path; NotFound when it is in none."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"target {path} does not exist", "pass --target with an existing folder")
    folder = path if path.is_dir() else path.parent
    try:
        top = git(folder, "rev-parse", "--show-toplevel")
    except ExternalError:
        raise NotFound(f"target {path} is not in a git repository",
                       "an evolution works on a branch: pick a folder inside a git checkout") from None
    return Path(top)


def branch_name(focus: str, evolution_id: str, moment: datetime) -> str:
    """tdev/auto/YYYYMMDD-<focus>-<short id> (DESIGN §5)."""
    return f"{AUTO_PREFIX}{moment.strftime('%Y%m%d')}-{focus}-{evolution_id.rsplit('-', 1)[-1]}"


def add_worktree(repo: Path, path: Path, branch: str | None, base: str = "HEAD") -> None:
    """A worktree at base on a new branch, or detached (branch None: nothing to delete afterwards)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    git(repo, "worktree", "add", "-q", *(["-b", branch] if branch else ["--detach"]), str(path), base)


def remove_worktree(repo: Path | None, path: Path) -> bool:
    """Remove a worktree and its administrative entry; True when something was removed."""
    existed = path.exists()
    if repo and Path(repo).exists():
        git(repo, "worktree", "remove", "--force", str(path), check=False)
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    if repo and Path(repo).exists():
        git(repo, "worktree", "prune", check=False)
    return existed


def worktree_repo(path: Path) -> Path | None:
    """The main repository a worktree belongs to (from its .git file), if it can be told."""
    marker = Path(path) / ".git"
    if marker.is_file():
        text = marker.read_text(errors="replace").strip()
        if text.startswith("gitdir:"):
            gitdir = Path(text.split(":", 1)[1].strip())
            # <repo>/.git/worktrees/<name>
            if gitdir.parent.name == "worktrees":
                return gitdir.parent.parent.parent
    return None


def changed_files(worktree: Path) -> list[str]:
    """Files the worktree changed against its HEAD (tracked files only)."""
    output = git(worktree, "diff", "--name-only", "HEAD")
    return [line for line in output.splitlines() if line]


def patch_paths(worktree: Path, patch: str) -> list[str]:
    """Every path a unified diff touches (both sides of a rename), as git itself parses it."""
    fields = git(worktree, "apply", "--recount", "--numstat", "-z", "-", stdin=patch, strip=False).split("\0")
    found, index = [], 0
    while index < len(fields) and fields[index]:
        counts = fields[index].split("\t")
        if len(counts) == 3 and counts[2]:
            found.append(counts[2])
            index += 1
        else:  # a rename or copy: "added\tdeleted\t" then the old and the new path
            found += fields[index + 1:index + 3]
            index += 3
    return found


def apply_patch(worktree: Path, patch: str, check_only: bool = False) -> None:
    """`git apply` (or only `--check`) in the worktree; ExternalError with git's reason when it does not apply."""
    git(worktree, "apply", "--whitespace=nowarn", *(["--check"] if check_only else []), "-", stdin=patch)


def apply_agent_patch(worktree: Path, patch: str) -> None:
    """Apply a model's patch (DESIGN §5): hunk line counts recounted, a three-way apply when the plain one
    fails; ExternalError with the plain apply's reason when neither applies (the worktree is then reset)."""
    try:
        git(worktree, "apply", "--recount", "--whitespace=nowarn", "-", stdin=patch)
    except ExternalError as plain:
        try:
            git(worktree, "apply", "--recount", "--3way", "--whitespace=nowarn", "-", stdin=patch)
        except ExternalError:
            discard_changes(worktree)
            raise plain from None


def diff_entries(worktree: Path) -> list[dict]:
    """The worktree's change against HEAD, one entry per path (a rename is a deletion and an addition):
    {path, status, old_mode, new_mode, added, deleted}, added/deleted None for a binary file.
    The index is updated first (git add -A)."""
    git(worktree, "add", "-A")
    raw = git(worktree, "diff", "--cached", "--raw", "-z", "--no-renames", "HEAD", strip=False).split("\0")
    counts = git(worktree, "diff", "--cached", "--numstat", "-z", "--no-renames", "HEAD", strip=False).split("\0")
    lines = {}
    for field in counts:
        parts = field.split("\t")
        if len(parts) == 3:
            lines[parts[2]] = (None, None) if parts[0] == "-" else (int(parts[0]), int(parts[1]))
    entries, index = [], 0
    while index + 1 < len(raw) and raw[index].startswith(":"):
        old_mode, new_mode, _, _, status = raw[index][1:].split()
        path = raw[index + 1]
        added, deleted = lines.get(path, (0, 0))
        entries.append({"path": path, "status": status[0], "old_mode": old_mode, "new_mode": new_mode,
                        "added": added, "deleted": deleted})
        index += 2
    return entries


def worktree_diff(worktree: Path) -> str:
    """Everything the worktree changed against HEAD, new files included, as one patch (the index is updated)."""
    git(worktree, "add", "-A")
    return git(worktree, "diff", "--cached", "--binary", "HEAD", strip=False)


def discard_changes(worktree: Path) -> None:
    """Back to HEAD: a refused or failed change leaves nothing behind for the next cycle."""
    git(worktree, "reset", "-q", "--hard", "HEAD")
    git(worktree, "clean", "-fdq")


def commit_all(worktree: Path, message: str) -> str | None:
    """Commit every change in the worktree; the new sha, or None when nothing changed."""
    if not git(worktree, "status", "--porcelain"):
        return None
    git(worktree, "add", "-A")
    git(worktree, "-c", "user.name=T-Developer", "-c", "user.email=t-developer@users.noreply.github.com",
        "commit", "-q", "-m", message)
    return git(worktree, "rev-parse", "HEAD")


def has_remote(repo: Path, remote: str = "origin") -> bool:
    return remote in git(repo, "remote").split()


def remote_url(repo: Path, remote: str = "origin") -> str | None:
    """The remote's URL, or None without that remote (it may carry a token: mask before showing it)."""
    return git(repo, "remote", "get-url", remote, check=False) or None


def push(worktree: Path, branch: str, remote: str = "origin") -> None:
    git(worktree, "push", "-q", "-u", remote, f"{branch}:{branch}")


def auto_branches(repo: Path) -> list[str]:
    output = git(repo, "for-each-ref", "--format=%(refname:short)", f"refs/heads/{AUTO_PREFIX}")
    return [line for line in output.splitlines() if line]


def merged_branches(repo: Path, base: str) -> set[str]:
    output = git(repo, "branch", "--format=%(refname:short)", "--merged", base, check=False)
    return {line.strip() for line in output.splitlines() if line.strip()}


def delete_branch(repo: Path, branch: str) -> None:
    git(repo, "branch", "-D", branch)


def branch_age_days(repo: Path, branch: str) -> float:
    """Days since the branch's last commit."""
    stamp = git(repo, "log", "-1", "--format=%ct", branch)
    return (datetime.now().timestamp() - int(stamp)) / 86400 if stamp else 0.0
