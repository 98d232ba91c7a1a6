"""Clean-up after evolutions (cleanup.py) and garbage collection (gc.py).

Every command first plans: a list of items, each with what it would do and why. A dry
run prints the plan and changes nothing; a real run carries out each item, going on
past one that fails, and reports what was done.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from lib import cli, config, humanize, paths, procs
from lib.adapters import github, gitops
from lib.backup import restore
from lib.errors import ExternalError, ToolError
from lib.evolution import candidates, lifecycle, stuck
from lib.quality import measure
from lib.store import ACTIVE, FINAL, Store, open_store
from lib.store.lost import EVOLUTION_FOLDER
from lib.timeparse import from_iso, iso, local, parse_duration, utcnow

PARTIAL_SUFFIXES = (".part", ".tmp")
ROTATED_LOG = re.compile(r"^current\.log[.-].+")
ABANDONED_AFTER_DAYS = 7
#: Seconds a remote has to list its heads before gc keeps what only it might hold.
REMOTE_TIMEOUT = 60
TERMINATE_GRACE = 5.0

COLUMNS = [("action", "ACTION"), ("what", "WHAT"), ("reason", "REASON"), ("size", "SIZE"), ("result", "RESULT")]


@dataclass
class Item:
    action: str  # remove | remove-worktree | delete-branch | mark-killed | terminate | compact
    what: str
    reason: str
    bytes: int = 0
    run: Callable[[], object] | None = field(default=None, repr=False)
    result: str = ""

    def row(self) -> dict:
        return {"action": self.action, "what": self.what, "reason": self.reason,
                "size": humanize.size(self.bytes) if self.bytes else "", "result": self.result}


@dataclass
class Plan:
    items: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _tree(path: Path):
    """path itself and, for a folder, everything inside it (symlinks not followed)."""
    yield path
    if path.is_dir() and not path.is_symlink():
        for folder, dirs, files in os.walk(path):
            for name in dirs + files:
                yield Path(folder) / name


def _size(path: Path) -> int:
    total = 0
    for item in _tree(path):
        try:
            total += item.lstat().st_size if not item.is_dir() or item.is_symlink() else 0
        except OSError:
            pass
    return total


def _mtime(path: Path) -> float:
    """Modification time; a file that vanished meanwhile counts as new (nothing to remove)."""
    try:
        return path.lstat().st_mtime
    except OSError:
        return time.time()


def _newest_mtime(path: Path) -> float:
    """The last change anywhere in a folder (a folder's own mtime misses edits of its files)."""
    return max((_mtime(item) for item in _tree(path)), default=0.0)


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _remove(path: Path, reason: str) -> Item:
    return Item("remove", str(path), reason, _size(path), lambda: _remove_path(path))


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


# ---- cleanup.py --temp -----------------------------------------------------------------------

def plan_temp(store: Store, older_than: timedelta) -> Plan:
    """Scratch folders of evolutions no longer running, stale rotated current.logs, old partial files."""
    cutoff = time.time() - older_than.total_seconds()
    age = f"untouched for more than {_age_words(older_than)}"
    active = {record["id"] for record in store.active_evolutions()}
    plan = Plan()
    for entry in _children(paths.tmp_dir()):
        if entry.name in active:
            continue
        if _newest_mtime(entry) < cutoff:
            plan.items.append(_remove(entry, f"scratch space, {age}"))
    for entry in _children(paths.history_dir()):
        if ROTATED_LOG.match(entry.name) and entry.is_file() and _mtime(entry) < cutoff:
            plan.items.append(_remove(entry, f"rotated current.log, {age}"))
    skip = {paths.worktrees_dir(), paths.tmp_dir(), *(paths.evolution_dir(i) for i in active)}
    for base in (paths.history_dir(), paths.backup_dir()):
        for folder, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if Path(folder) / d not in skip]
            for name in files:
                path = Path(folder) / name
                if name.endswith(PARTIAL_SUFFIXES) and _mtime(path) < cutoff:
                    plan.items.append(_remove(path, f"partial file, {age}"))
    plan.items.extend(_plan_measure_cache(older_than))
    return plan


def _plan_measure_cache(older_than: timedelta) -> list[Item]:
    """One row for the measurement-cache entries unused for CACHE_UNUSED_DAYS (or older_than when longer):
    derived data, measured again when met again, so the daily --older-than 24h does not empty it."""
    unused = max(older_than, timedelta(days=measure.CACHE_UNUSED_DAYS))
    entries = measure.unused_cache_entries(unused.total_seconds())
    if not entries:
        return []

    def remove_entries() -> None:
        for entry in entries:
            entry.unlink(missing_ok=True)

    return [Item("remove", f"{len(entries)} entries of {measure.cache_folder()}",
                 f"measurement cache, unused for more than {_age_words(unused)}", sum(map(_size, entries)),
                 remove_entries)]


def _age_words(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours / 24:g} days" if hours >= 48 else f"{hours:g} hours"


# ---- cleanup.py --evolution <id> -----------------------------------------------------------------

def _terminate(evolution_id: str, process: dict) -> None:
    """TERM (then KILL) an agent process found by the plan, once proven to be that same process."""
    import psutil

    state, detail = procs.identify(process["pid"], started=process["started"], host=None,
                                   env=(lifecycle.ENV_KEY, evolution_id), what=f"agent process of {evolution_id}")
    if state in (procs.GONE, procs.OTHER):  # it ended meanwhile (and its pid may be another program's now)
        return
    if state != procs.ALIVE:
        raise ToolError(f"not ended: {detail}")
    try:
        target = psutil.Process(process["pid"])
        target.terminate()
        _, alive = psutil.wait_procs([target], timeout=TERMINATE_GRACE)
        for survivor in alive:
            survivor.kill()
    except psutil.NoSuchProcess:
        pass
    except psutil.AccessDenied:
        raise ToolError(f"not allowed to end process {process['pid']}", "run as the user that started it") from None


def _target_repo(record: dict | None) -> Path | None:
    target = Path((record or {}).get("target") or "")
    if not target.parts or not target.exists():
        return None
    try:
        return gitops.repo_root(target)
    except ToolError:
        return None


def _remove_worktree(path: Path, record: dict | None, reason: str) -> Item:
    repo = gitops.worktree_repo(path) or _target_repo(record)
    return Item("remove-worktree", str(path), reason, _size(path), lambda: gitops.remove_worktree(repo, path))


def plan_evolution(store: Store, evolution_id: str) -> Plan:
    """Mark a dead active evolution killed; end its orphaned agents; remove its worktree and scratch space."""
    record = store.evolution_or_fail(evolution_id)
    plan = Plan()
    if record["status"] in ACTIVE:
        detail = stuck.runner_gone(record)
        plan.items.append(Item("mark-killed", evolution_id, f"marked {record['status']} but {detail}",
                               run=lambda: lifecycle.record_killed(store, evolution_id, "cleaned up: process gone",
                                                                   "killed: runner process gone (cleaned up)")))
    for process in lifecycle.agent_processes().get(evolution_id, []):
        plan.items.append(Item("terminate", f"pid {process['pid']} ({process['cmdline'][:60] or process['name']})",
                               "agent process of an evolution that ended",
                               run=lambda process=process: _terminate(evolution_id, process)))
    worktree = paths.worktrees_dir() / evolution_id
    if worktree.exists():
        plan.items.append(_remove_worktree(worktree, record, "the evolution's git worktree"))
    for path in _children(paths.worktrees_dir()):
        if path != worktree and candidates.owner(path.name) == evolution_id:
            plan.items.append(_remove_worktree(path, record, "a candidate's git worktree (DESIGN §5 Candidates)"))
    scratch = paths.tmp_dir() / evolution_id
    if scratch.exists():
        plan.items.append(_remove(scratch, "the evolution's scratch space"))
    if not plan.items:
        plan.notes.append(f"nothing left to clean up for {evolution_id} ({record['status']})")
    return plan


# ---- cleanup.py --all ------------------------------------------------------------------------------

def _ended(records: dict, name: str) -> str | None:
    """Why a folder named after an evolution may go (final, or no such evolution), None if active."""
    record = records.get(name)
    if record is None:
        return "no such evolution in the store"
    return f"evolution {record['status']}" if record["status"] in FINAL else None


def _records_for(store: Store, names: list[str]) -> dict:
    return {name: record for name in names if (record := store.get_evolution(name))}


def plan_all(store: Store) -> Plan:
    """Worktrees of every evolution that ended (its candidates' too), and every temporary file whatever its age."""
    worktrees = _children(paths.worktrees_dir())
    records = _records_for(store, [candidates.owner(w.name) for w in worktrees])
    plan = Plan()
    for path in worktrees:
        reason = _ended(records, candidates.owner(path.name))
        if reason:
            plan.items.append(_remove_worktree(path, records.get(candidates.owner(path.name)), f"worktree, {reason}"))
    plan.items.extend(plan_temp(store, timedelta(0)).items)
    return plan


# ---- gc.py ---------------------------------------------------------------------------------------------

def _branch_owners(records: dict) -> dict[str, list[dict]]:
    """Evolutions by the short id that ends their branch name (tdev/auto/YYYYMMDD-<focus>-<short>)."""
    owners: dict[str, list[dict]] = {}
    for record in records.values():
        owners.setdefault(record["id"].rsplit("-", 1)[-1], []).append(record)
    return owners


def _base_ref(repo: Path, base: str) -> str | None:
    for ref in (base, f"origin/{base}"):
        if gitops.git(repo, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False):
            return ref
    return None


def _open_pr_branches(plan: Plan) -> set[str] | None:
    """Head branches of open PRs, or None when GitHub cannot be asked (then PRs count as open)."""

    if not github.configured():
        plan.notes.append("GitHub not configured: branches of evolutions that opened a PR are kept")
        return None
    try:
        client = github.Client.from_env()
        return {pull["head"]["ref"] for pull in client.paginate(client.repo_path("/pulls"), {"state": "open"})}
    except ToolError as failure:
        plan.notes.append(f"open PRs unknown ({failure}): branches of evolutions that opened a PR are kept")
        return None


def _branch_verdict(branch: str, owners: list[dict], merged: bool, aggressive: bool, open_heads: set | None,
                    age_days: Callable[[], float]) -> str | None:
    """Why the branch may be deleted, or None to keep it."""
    if any(owner["status"] in ACTIVE for owner in owners):
        return None
    if merged:
        return "merged into the base branch"
    if not owners:
        return None  # not ours to judge: only merged branches of unknown evolutions go
    record = max(owners, key=lambda r: r.get("started_at") or "")
    if aggressive:
        if open_heads is not None:
            return None if branch in open_heads else f"evolution {record['status']}, no open PR"
        return None if record.get("pr_number") else f"evolution {record['status']}, no PR"
    if record.get("pr_number"):
        return None
    age = age_days()
    if age > ABANDONED_AFTER_DAYS:
        return f"abandoned: evolution {record['status']} without a PR, last commit {age:.0f} days ago"
    return None


def _checked_out(repo: Path) -> dict[str, str]:
    """Branches checked out in the repository or one of its worktrees (git refuses to delete those)."""
    found, path = {}, ""
    for line in gitops.git(repo, "worktree", "list", "--porcelain", check=False).splitlines():
        if line.startswith("worktree "):
            path = line.split(" ", 1)[1]
        elif line.startswith("branch refs/heads/"):
            found[line[len("branch refs/heads/"):]] = path
    return found


def _remote_heads(repo: Path, plan: Plan) -> list[str]:
    """The commits at every remote's branch heads as the remote answers now (git ls-remote): a remote-tracking
    ref may be stale (the branch deleted on the remote since), so it proves nothing. A remote that does not
    answer adds nothing: the branches only it might hold are kept, with a note."""
    heads = []
    for remote in gitops.git(repo, "remote", check=False).split():
        try:
            listing = gitops.git(repo, "ls-remote", "--heads", remote, timeout=REMOTE_TIMEOUT)
        except ExternalError as failure:
            plan.notes.append(f"{repo}: remote {remote} did not answer ({failure}); branches not proven on it are kept")
            continue
        heads += [line.split()[0] for line in listing.splitlines() if line.strip()]
    return heads


def _on_remote(repo: Path, branch: str, heads: list[str]) -> bool:
    """Whether a remote's head (as it answered) contains the branch's last commit: deleting it loses nothing.
    Heads whose commits this clone lacks cannot be judged and prove nothing."""
    if not heads:
        return False
    checked = gitops.git(repo, "cat-file", "--batch-check", stdin="\n".join(heads) + "\n", check=False)
    known = [words[0] for words in map(str.split, checked.splitlines()) if words[1:2] == ["commit"]]
    if not known:
        return False
    tip = gitops.git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False)
    if not tip:
        return False
    outside = gitops.git(repo, "rev-list", "--count", "--stdin", check=False,
                         stdin="\n".join([tip, *(f"^{head}" for head in known)]) + "\n")
    return outside == "0"


def _plan_branches(plan: Plan, repos: set[Path], records: dict, aggressive: bool) -> None:
    base = config.settings()["github"]["base_branch"]
    owners = _branch_owners(records)
    open_heads = _open_pr_branches(plan) if aggressive else None
    for repo in sorted(repos):
        branches = gitops.auto_branches(repo)
        if not branches:
            continue
        heads: list[str] | None = None  # asked of the remotes once per repository, and only when needed
        ref = _base_ref(repo, base)
        if ref is None:
            plan.notes.append(f"{repo}: base branch {base} not found; only abandoned branches are judged")
        merged = gitops.merged_branches(repo, ref) if ref else set()
        checked_out = _checked_out(repo)
        for branch in branches:
            if branch in checked_out:
                plan.notes.append(f"{repo}: {branch} is checked out in {checked_out[branch]}; kept")
                continue
            reason = _branch_verdict(branch, owners.get(branch.rsplit("-", 1)[-1], []), branch in merged,
                                     aggressive, open_heads, lambda b=branch, r=repo: gitops.branch_age_days(r, b))
            if reason and branch not in merged and heads is None:
                heads = _remote_heads(repo, plan)
            if reason and branch not in merged and not _on_remote(repo, branch, heads):
                plan.notes.append(f"{repo}: kept {branch} ({reason}): its commits are on no remote, so it holds "
                                  f"the only copy of that work; push it, or delete it by hand: "
                                  f"git -C {repo} branch -D {branch}")
                continue
            if reason:
                plan.items.append(Item("delete-branch", f"{branch} in {repo}", reason,
                                       run=lambda b=branch, r=repo: gitops.delete_branch(r, b)))


def _repositories(records: dict, worktrees: list[Path]) -> set[Path]:
    """The repositories evolutions worked on: of their targets, and of worktrees still there."""
    repos = {gitops.worktree_repo(path) for path in worktrees}
    for target in {record.get("target") for record in records.values()}:
        repos.add(_target_repo({"target": target}))
    return {repo for repo in repos if repo and repo.exists()}


def plan_gc(store: Store, aggressive: bool) -> Plan:
    """Orphaned worktrees, merged or abandoned tdev/auto/ branches, old artifacts, then compaction."""
    retention = config.settings()["retention"]["artifacts_days"] / (2 if aggressive else 1)
    records = {record["id"]: record for record in store.list_evolutions()}
    plan = Plan()
    worktrees = _children(paths.worktrees_dir())
    for path in worktrees:
        owner = candidates.owner(path.name)  # a candidate's worktree goes with its evolution
        reason = _ended(records, owner)
        if reason:
            plan.items.append(_remove_worktree(path, records.get(owner), f"orphaned worktree, {reason}"))
    _plan_branches(plan, _repositories(records, worktrees), records, aggressive)
    cutoff = time.time() - retention * 86400
    for path in _children(paths.history_dir()):
        if not (EVOLUTION_FOLDER.match(path.name) and path.is_dir()):
            continue
        record = records.get(path.name)
        if record and record["status"] in ACTIVE:
            continue
        ended = from_iso((record or {}).get("finished_at") or (record or {}).get("started_at"))
        when = ended.timestamp() if ended else _newest_mtime(path)
        if when < cutoff:
            plan.items.append(_remove(path, f"artifacts older than {retention:g} days"))
    plan.items.extend(_plan_asides())
    if store.exists:
        plan.items.append(Item("compact", f"{store.backend} state store", "reclaim the space of deleted rows",
                               run=store.compact))
    return plan


def _plan_asides() -> list[Item]:
    """What restores set aside (*.pre-restore-<stamp>) longer ago than settings retention.pre_restore_days."""
    days = config.settings()["retention"]["pre_restore_days"]
    cutoff = utcnow() - timedelta(days=days)
    unfinished = restore.unfinished_paths()  # a killed restore's: the only copy until it is finished
    return [_remove(path, f"set aside by the restore of {local(iso(made))}, over {days} days ago")
            for path, made in restore.asides() if made < cutoff and path not in unfinished]


# ---- carrying a plan out ----------------------------------------------------------------------------

def execute(plan: Plan, dry_run: bool) -> dict:
    """Run each item (or only describe it); one failure does not stop the others."""
    done = failed = freed = 0
    for item in plan.items:
        if dry_run:
            item.result = "would do"
            continue
        try:
            item.run()
        except (ToolError, OSError) as failure:
            item.result = f"failed: {failure}"
            failed += 1
            continue
        item.result = "done"
        done += 1
        freed += item.bytes
    return {"dry_run": dry_run, "planned": len(plan.items), "planned_bytes": sum(i.bytes for i in plan.items),
            "done": done, "failed": failed, "freed_bytes": freed,
            "items": [item.row() for item in plan.items], "notes": plan.notes}


def outcome_line(outcome: dict) -> str:
    if not outcome["planned"]:
        return "nothing to clean up"
    if outcome["dry_run"]:
        return (f"dry run: {outcome['planned']} item(s) would be cleaned up "
                f"({humanize.size(outcome['planned_bytes'])}); nothing was changed")
    return (f"{outcome['done']} of {outcome['planned']} item(s) done, {humanize.size(outcome['freed_bytes'])} freed"
            + (f", {outcome['failed']} failed" if outcome["failed"] else ""))


def finish(outcome: dict, **details) -> int:
    """Print the items, notes and a summary line; audit a real run; the exit code (1 if any failed).

    Under cron a run that went well prints only its notes (what it had to keep, and why)."""
    shown = cli.report_wanted(important=bool(outcome["failed"]) or outcome["dry_run"])
    if outcome["items"] and shown:
        cli.print_table(outcome["items"], COLUMNS)
    for note in outcome["notes"]:
        cli.info(f"note: {note}")
    if shown:
        cli.info(outcome_line(outcome))
    if not outcome["dry_run"]:
        actions: dict[str, int] = {}
        for item in outcome["items"]:
            if item["result"] == "done":
                actions[item["action"]] = actions.get(item["action"], 0) + 1
        cli.audit("failed" if outcome["failed"] else "ok", done=actions, failed=outcome["failed"],
                  freed_bytes=outcome["freed_bytes"], **details)
    return 1 if outcome["failed"] else 0


# ---- the commands -----------------------------------------------------------------------------------

def clean_up(*, older_than: str | None = None, evolution_id: str | None = None, everything: bool = False,
             force: bool = False, dry_run: bool = False) -> int:
    """cleanup.py: temporary files (the default), one evolution (evolution_id) or every ended one (everything,
    confirmed unless force), under the cleanup lock; shown and audited. The exit code."""
    with cli.lock("cleanup"):
        store = open_store()
        if evolution_id:
            mode, plan = "evolution", plan_evolution(store, evolution_id.strip())
        elif everything:
            mode, plan = "all", plan_all(store)
            if plan.items and not dry_run:
                cli.confirm(f"clean up {len(plan.items)} item(s) of ended evolutions?", force, flag="--force")
        else:
            age = parse_duration(older_than or f"{config.settings()['retention']['temp_hours']}h")
            mode, plan = "temp", plan_temp(store, age)
        outcome = execute(plan, dry_run)
    return finish(outcome, mode=mode, evolution_id=evolution_id)


def collect_garbage(aggressive: bool, dry_run: bool) -> int:
    """gc.py: the garbage plan under the gc lock, carried out (or shown), and audited. The exit code."""
    with cli.lock("gc"):
        outcome = execute(plan_gc(open_store(), aggressive), dry_run)
    return finish(outcome, aggressive=aggressive)
