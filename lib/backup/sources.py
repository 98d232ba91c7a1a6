"""What a backup holds: the roots it reads, the files each kind selects, the store copy.

Roots are the places of DESIGN §2 (history, config, logs, MCP config); one that lies
inside another (logs falling back to evolution_history/logs) is part of the outer one.
Members are named <root>/<path inside the root>, so an archive restores onto whatever
folders the environment names at restore time.

- full:    every file of every root (history without worktrees/, tmp/, locks/, measure_cache/ and backups)
- daily:   the store, the log files changed since the start of yesterday, config/
- history: one day's evolutions and tasks (a store subset), their folders, that day's logs
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import stat as statmod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from lib import paths, timeparse
from lib.store import backend_name, open_store
from lib.store.sqlite import SQLiteStore, db_path

STORE_FILE = "state.db"
STORE_COMPANIONS = ("state.db-wal", "state.db-shm", "state.db-journal")
RECORDS_MEMBER = "store/records.jsonl"
#: never backed up, and kept live by a restore: scratch, locks, and the derived measurement cache (DESIGN §8)
HISTORY_SKIP = ("worktrees", "tmp", "locks", paths.MEASURE_CACHE)
_LOG_NAME = re.compile(r"\.log(\.\d+)?$")
KIND_COUNT_KEYS = {"evolution": "evolutions", "task": "tasks", "span": "spans", "pattern": "patterns", "meta": "meta"}


@dataclass(frozen=True)
class Root:
    name: str
    path: Path
    is_file: bool = False


def _inside(child: Path, parent: Path) -> str | None:
    """child's path relative to parent (posix), when child lies inside parent."""
    try:
        relative = Path(os.path.abspath(child)).relative_to(os.path.abspath(parent))
    except ValueError:
        return None
    return relative.as_posix() if relative.parts else None


def all_roots() -> list[Root]:
    return [Root("history", paths.history_dir()), Root("config", paths.config_dir()),
            Root("logs", paths.log_dir()), Root("mcp", paths.mcp_config(), is_file=True)]


def units(roots: list[Root] | None = None) -> list[Root]:
    """The roots that are not inside another one: what a backup names and a restore swaps."""
    roots = roots or all_roots()
    kept: list[Root] = []
    for root in roots:
        if not any(_inside(root.path, outer.path) for outer in kept if not outer.is_file):
            kept.append(root)
    return kept


def locator(roots: list[Root] | None = None):
    """A function member -> (unit, path inside it; '' for a file unit), with the nesting worked out once."""
    roots = roots or all_roots()
    placement: dict[str, tuple[Root, str | None]] = {}
    unit_list = units(roots)
    for root in roots:
        for unit in unit_list:
            within = None if unit.is_file else _inside(root.path, unit.path)
            if unit.name == root.name or within:
                placement[root.name] = (unit, None if unit.name == root.name else within)
                break

    def locate_member(member: str) -> tuple[Root, str]:
        root_name, _, rest = member.partition("/")
        if root_name not in placement:
            raise LookupError(f"{member}: no root named {root_name}")
        unit, within = placement[root_name]
        if unit.is_file:
            return unit, ""
        if within is None:
            return unit, rest
        root_is_file = next(r for r in roots if r.name == root_name).is_file
        return unit, within if root_is_file else f"{within}/{rest}"

    return locate_member


def history_skips() -> set[str]:
    """Paths inside the history that no backup reads and no restore replaces."""
    skips = set(HISTORY_SKIP)
    inner_backups = _inside(paths.backup_dir(), paths.history_dir())
    if inner_backups:
        skips.add(inner_backups)
    return skips


Stat = os.stat_result


@dataclass
class Item:
    member: str
    path: Path
    size: int


def walk(root: Path, skip: set[str] = frozenset(), warnings: list | None = None) -> Iterator[tuple[str, Stat]]:
    """(relative posix path, stat) of every regular file under root, sorted; symlinks are reported and skipped."""

    def visit(folder: Path, prefix: str) -> Iterator[tuple[str, Stat]]:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except FileNotFoundError:
            return
        for entry in entries:
            relative = f"{prefix}{entry.name}"
            if relative in skip:
                continue
            info = entry.stat(follow_symlinks=False)
            if statmod.S_ISDIR(info.st_mode):
                yield from visit(Path(entry.path), f"{relative}/")
            elif statmod.S_ISREG(info.st_mode):
                yield relative, info
            elif warnings is not None:
                warnings.append(f"skipped {entry.path}: {'a symlink' if entry.is_symlink() else 'not a regular file'}")

    if root.is_dir():
        yield from visit(root, "")


def _is_log(relative: str, log_prefix: str | None) -> bool:
    return bool(_LOG_NAME.search(relative) or (log_prefix and relative.startswith(f"{log_prefix}/")))


@dataclass
class Selection:
    """The files a backup will read, and the roots it covers (complete: the root is all there)."""

    items: list[Item] = field(default_factory=list)
    roots: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    evolutions: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(item.size for item in self.items)


def window(kind: str, day: date) -> tuple[datetime | None, datetime | None]:
    """The modification times whose logs a kind takes: daily since yesterday began, history the day."""
    if kind == "daily":
        return timeparse.day_bounds(day - timedelta(days=1))[0], None
    if kind == "history":
        return timeparse.day_bounds(day)
    return None, None


def select(kind: str, day: date, evolution_ids: list[str] | None = None) -> Selection:
    """The files of a kind of backup (without the store, which snapshot() adds)."""
    selection = Selection(evolutions=list(evolution_ids or ()))
    start, end = window(kind, day)
    low = start.timestamp() if start else float("-inf")
    high = end.timestamp() if end else float("inf")
    history = paths.history_dir()
    roots = all_roots()
    log_prefix = _inside(paths.log_dir(), history)
    skip = history_skips() | {STORE_FILE, *STORE_COMPANIONS}
    wanted_folders = tuple(f"{evolution_id}/" for evolution_id in evolution_ids or ())
    for unit in units(roots):
        if kind == "daily" and unit.name not in ("history", "config", "logs"):
            continue
        if kind == "history" and unit.name not in ("history", "logs"):
            continue
        selection.roots[unit.name] = {"path": str(unit.path), "file": unit.is_file,
                                      "complete": kind == "full" and unit.name == "history"}
        if unit.is_file:
            if unit.path.is_file():
                info = unit.path.stat()
                selection.items.append(Item(f"{unit.name}/{unit.path.name}", unit.path, info.st_size))
            continue
        for relative, info in walk(unit.path, skip if unit.name == "history" else set(), selection.warnings):
            if not _wanted(kind, unit.name, relative, info.st_mtime, (low, high), log_prefix, wanted_folders):
                continue
            selection.items.append(Item(f"{unit.name}/{relative}", unit.path / relative, info.st_size))
    return selection


def _wanted(kind: str, unit: str, relative: str, mtime: float, bounds: tuple, log_prefix: str | None,
            folders: tuple) -> bool:
    if kind == "full" or (kind == "daily" and unit == "config"):
        return True
    in_window = bounds[0] <= mtime < bounds[1]
    if unit == "logs":
        return in_window
    if kind == "history" and relative.startswith(folders):
        return True
    return in_window and _is_log(relative, log_prefix)


# ---- the store ---------------------------------------------------------------------------------



@dataclass
class StoreCopy:
    """The store as the archive holds it: a SQLite file, or exported records as JSON lines."""

    backend: str
    member: str | None = None
    path: Path | None = None
    mode: str | None = None  # snapshot (a SQLite file) or records (JSON lines)
    counts: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {"backend": self.backend, "member": self.member, "mode": self.mode, "counts": self.counts}


def write_records(path: Path, records) -> dict:
    """(kind, record) pairs as JSON lines; returns counts keyed like Store.counts()."""
    counts: dict[str, int] = {}
    with open(path, "w", encoding="utf-8") as out:
        for kind, record in records:
            out.write(json.dumps({"kind": kind, "record": record}, sort_keys=True, default=str) + "\n")
            key = KIND_COUNT_KEYS.get(kind, kind)
            counts[key] = counts.get(key, 0) + 1
    return counts


def read_records(path: Path) -> Iterator[tuple[str, dict]]:
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                item = json.loads(line)
                yield item["kind"], item["record"]


def sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite file with the online backup API (the runner may be writing)."""
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def day_evolutions(store, day: date) -> list[dict]:
    """The evolutions that started on a local calendar day."""
    start, end = timeparse.day_bounds(day)
    return store.list_evolutions(since=timeparse.iso(start), until=timeparse.iso(end))


def _day_records(store, evolutions: list[dict]) -> Iterator[tuple[str, dict]]:
    for evolution in evolutions:
        yield "evolution", evolution
        traces = []
        for task in store.list_tasks(evolution_id=evolution["id"]):
            yield "task", task
            if task.get("trace_id") and task["trace_id"] not in traces:
                traces.append(task["trace_id"])
        for trace_id in traces:
            for span in store.list_spans(trace_id):
                yield "span", span


@contextlib.contextmanager
def snapshot(kind: str, day: date, workdir: Path) -> Iterator[tuple[StoreCopy, list[str]]]:
    """Copy the store into workdir for the archive; yields it and the evolution ids it covers."""

    backend = backend_name()
    if kind != "history" and backend == "sqlite":
        copy = StoreCopy(backend)
        if db_path().exists():
            copy.path, copy.member, copy.mode = workdir / STORE_FILE, f"history/{STORE_FILE}", "snapshot"
            sqlite_copy(db_path(), copy.path)
            store = SQLiteStore.open(path=copy.path)
            copy.counts = store.counts()
            store.close()
        yield copy, []
        return
    store = open_store()
    try:
        copy = StoreCopy(backend, RECORDS_MEMBER, workdir / "records.jsonl", "records")
        if kind == "history":
            evolutions = day_evolutions(store, day)
            records, ids = _day_records(store, evolutions), [evolution["id"] for evolution in evolutions]
        else:
            records, ids = store.export_records(), []
        copy.counts = write_records(copy.path, records)
    finally:
        store.close()
    yield copy, ids
