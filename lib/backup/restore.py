"""Restore: pick the archives, verify them into staging beside each target, swap with renames.

Nothing live is touched until every member of every archive has been checked against its
manifest and written into a hidden staging folder beside its target (same filesystem).
Then each target is exchanged with its staging folder in one atomic rename
(renameat2 RENAME_EXCHANGE, or two renames where the system lacks it); the previous data
is kept as <target>.pre-restore-<stamp> and named in the output. What the archive does
not cover is moved back from there: worktrees/, tmp/, locks/ and the backup folder
always; for a daily or history backup, every file the archive does not hold (those
backups cover part of the history, not all of it). A full backup replaces the history
as a whole, so the store and the artifacts agree.

The audit log is append-only: when there is a live one, the archive's copy never
replaces it (the live one comes back after the swap and the restore is appended to it).
notify-state.json is operational state: the live one stays, the archive's is never restored.

restore.json (what was restored, with the effective manifest) is written into the
staging folder too, so after the swap no byte needs to be written: a full disk during
a restore leaves the live data as it was. gc.py removes what a restore set aside once it
is older than settings retention.pre_restore_days.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import json
import logging
import os
import re
import shutil
import signal
import time
from datetime import UTC, date, datetime
from pathlib import Path

from lib import fsutil, humanize, paths, timeparse
from lib.adapters import aws
from lib.archives import archive, repository
from lib.backup import sources
from lib.errors import Conflict, NotFound, ToolError
from lib.store import backend_name, open_store
from lib.store.sqlite import SQLiteStore, db_path

logger = logging.getLogger(__name__)

RESTORE_RECORD = "restore.json"
AUDIT_MEMBER = "history/audit.log"
#: Operational state (DESIGN §9): a restore keeps the live one, so an old one never reopens a resolved page.
NOTIFY_STATE = "notify-state.json"
NOTIFY_STATE_MEMBER = f"history/{NOTIFY_STATE}"
#: Test-only fault point (real code): TDEV_FAULT_PAUSE=restore-<step> stops the restore there for ever,
#: so that a test can kill it at a known step.
FAULT_PAUSE_ENV = "TDEV_FAULT_PAUSE"
_ASIDE = re.compile(r"\.pre-restore-(\d{8}T\d{6}Z)(?:-\d+)?$")
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


# ---- choosing ------------------------------------------------------------------------------------


def choose(day: date, source: str | None, kind: str = "auto") -> tuple[list[repository.Backup], str]:
    """The archives to apply (oldest first) and where they come from: local first, then S3."""
    if source in (None, "local"):
        chain = repository.chain_for(repository.list_local(), day, kind)
        if chain:
            return chain, "local"
        if source == "local":
            raise NotFound(f"no local {_kind_words(kind)} backup made on or before {day}",
                           f"look in {repository.local_dir()}, or try --source s3")
    offsite = repository.offsite(True)
    if not offsite.ready:
        where = f"no local backup on or before {day}, and " if source is None else ""
        raise NotFound(f"{where}cannot look in S3: {offsite.reason}")
    chain = repository.chain_for(repository.list_s3(offsite.bucket), day, kind)
    if not chain:
        raise NotFound(f"no {_kind_words(kind)} backup made on or before {day} "
                       f"{'locally or ' if source is None else ''}in s3://{offsite.bucket}/",
                       "pick a later --date, or check TDEV_BACKUP_DIR / TDEV_BACKUP_BUCKET")
    return chain, "s3"


def _kind_words(kind: str) -> str:
    return "daily or full" if kind == "auto" else kind


def active_evolutions() -> list[str]:
    """Evolutions pending, running or stopping; none when the store is too damaged to say."""

    try:
        store = open_store()
    except ToolError as failure:  # a broken store is what a restore is for
        logger.warning("note: cannot read the store to look for active evolutions (%s)", failure.message)
        return []
    try:
        return [e["id"] for e in store.active_evolutions()]
    finally:
        store.close()


def _refuse_if_active() -> None:
    active = active_evolutions()
    if active:
        raise Conflict(f"evolution {', '.join(active)} is active; a restore now would pull the data from under it",
                       f"stop it first: python scripts/stop_evolution.py --id {active[0]} --graceful")


# ---- staging and swapping -----------------------------------------------------------------------


def _renameat2():
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_EXCHANGE = _renameat2()


def swap_atomically(first: Path, second: Path) -> bool:
    """Swap two paths in one atomic step; False where the system or filesystem cannot."""
    if _EXCHANGE is None:
        return False
    if _EXCHANGE(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _carry_all(old: Path, new: Path, drop: set[str], prefix: str = "") -> None:
    """Move back every entry of old that new does not have (overlay: the archive replaced the rest)."""
    for entry in os.scandir(old):
        relative = f"{prefix}{entry.name}"
        if relative in drop:
            continue
        target = new / entry.name
        if not os.path.lexists(target):
            os.rename(entry.path, target)
        elif entry.is_dir(follow_symlinks=False) and target.is_dir() and not target.is_symlink():
            _carry_all(Path(entry.path), target, drop, f"{relative}/")


def _carry_named(old: Path, new: Path, names: set[str]) -> None:
    """Move back only the named paths (a full restore keeps worktrees/, tmp/, locks/, backups)."""
    for name in sorted(names):
        source, target = old / name, new / name
        if os.path.lexists(source) and not os.path.lexists(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(source, target)


def _keep_audit_log(aside: Path, live: Path) -> None:
    """Bring the live audit log back; a line a command wrote during the exchange is appended to it."""
    kept, current = aside / paths.audit_log().name, live / paths.audit_log().name
    if not os.path.lexists(kept):
        return
    if os.path.lexists(current):
        with open(current, "rb") as written, open(kept, "ab") as log:
            shutil.copyfileobj(written, log)
        os.unlink(current)
    os.rename(kept, current)


def _prune_empty(folder: Path) -> int:
    """Remove empty folders below folder (not folder itself); return how many files remain."""
    files = 0
    for current, dirs, names in os.walk(folder, topdown=False):
        files += len(names)
        for name in dirs:
            try:
                os.rmdir(os.path.join(current, name))
            except OSError:
                pass  # not empty
    return files


class Staging:
    """Hidden folders beside each target that receive the verified archive members."""

    def __init__(self, stamp: str):
        self.roots = sources.all_roots()
        self.units = {unit.name: unit for unit in sources.units(self.roots)}
        self.locate = sources.locator(self.roots)
        self.history = self.units["history"]
        self.stamp = stamp
        taken = 1
        while any(os.path.lexists(path) for unit in self.units.values()
                  for path in (self.staging(unit), self.aside(unit))):  # two restores in one second
            taken += 1
            self.stamp = f"{stamp}-{taken}"
        self.work = self.history.path.parent / f".{self.history.path.name}.restore-{self.stamp}-work"
        self.touched: set[str] = set()
        self.swapped: set[str] = set()
        self.kept_audit_log = False

    def staging(self, unit: sources.Root) -> Path:
        return unit.path.parent / f".{unit.path.name}.restore-{self.stamp}"

    def aside(self, unit: sources.Root) -> Path:
        return unit.path.parent / f"{unit.path.name}.pre-restore-{self.stamp}"

    def clean_stale(self) -> list[str]:
        """Staging folders a killed restore left behind (call while holding the backup lock)."""
        removed, unfinished = [], unfinished_paths()
        for unit in self.units.values():
            for leftover in unit.path.parent.glob(f".{unit.path.name}.restore-*"):
                if leftover in unfinished:
                    continue
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
                removed.append(str(leftover))
        return removed

    def prepare(self) -> None:
        self.work.mkdir(parents=True)
        for unit in self.units.values():
            if not unit.is_file:
                self.staging(unit).mkdir(parents=True)

    def sink(self, member: str) -> Path:
        """Where a verified member is written: the work folder or a unit's staging."""
        if member.startswith("store/"):
            return self.work / member.partition("/")[2]
        if member == AUDIT_MEMBER and os.path.lexists(paths.audit_log()):  # append-only: the live one stays
            self.kept_audit_log = True
            return self.work / "archived-audit.log"
        if member == NOTIFY_STATE_MEMBER:
            return self.work / f"archived-{NOTIFY_STATE}"
        unit, relative = self.locate(member)
        self.touched.add(unit.name)
        return self.staging(unit) if unit.is_file else self.staging(unit) / relative

    def staged(self, member: str) -> Path:
        unit, relative = self.locate(member)
        self.touched.add(unit.name)
        return self.staging(unit) / relative

    def swap(self, complete: bool) -> dict:
        """Exchange every touched unit with its staging; returns {unit: (aside, files kept aside)}.
        The journal records each unit's step, so that a restore killed midway is finished by `recover`."""
        names = [n for n in self.units if n in self.touched]
        journal = {"stamp": self.stamp, "pid": os.getpid(), "work": str(self.work), "units": {
            name: {"kind": "file" if self.units[name].is_file else "dir", "live": str(self.units[name].path),
                   "staging": str(self.staging(self.units[name])), "aside": str(self.aside(self.units[name])),
                   "staged_inode": os.lstat(self.staging(self.units[name])).st_ino,
                   "complete": complete and name == "history", "step": "staged"} for name in names}}
        _write_journal(journal)
        result = {}
        for name in names:
            unit = self.units[name]
            result[name] = self._swap_file(unit) if unit.is_file else \
                self._swap_dir(unit, journal, complete and name == "history")
            journal["units"][name]["step"] = "done"
            _write_journal(journal)
        journal_path().unlink()
        return result

    def _swap_file(self, unit: sources.Root) -> dict | None:
        aside = self.aside(unit)
        kept = None
        if os.path.lexists(unit.path):
            os.link(unit.path, aside)
            kept = {"aside": str(aside), "files": 1}
        unit.path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.staging(unit), unit.path)
        self.swapped.add(unit.name)
        return kept

    def discard(self) -> None:
        """Remove the staging of every unit not swapped yet, and the work folder."""
        for name, unit in self.units.items():
            if name not in self.swapped:
                target = self.staging(unit)
                shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
        shutil.rmtree(self.work, ignore_errors=True)

    def _swap_dir(self, unit: sources.Root, journal: dict, complete: bool) -> dict | None:
        staging, aside = self.staging(unit), self.aside(unit)
        if not os.path.lexists(unit.path):
            unit.path.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staging, unit.path)
            self.swapped.add(unit.name)
            return None
        if swap_atomically(staging, unit.path):
            self.swapped.add(unit.name)  # the previous data is at the staging path now: never discard it
            _journal_step(journal, unit.name, "exchanged")
            os.rename(staging, aside)
        else:
            os.rename(unit.path, aside)
            self.swapped.add(unit.name)
            os.rename(staging, unit.path)
        _journal_step(journal, unit.name, "swapped")
        return _settle_aside(unit.name, aside, unit.path, complete)


def _settle_aside(name: str, aside: Path, live: Path, complete: bool) -> dict | None:
    """After a unit's swap: bring back from the aside folder what the archive does not replace, then remove
    the aside folder if nothing else is left in it. Safe to run again (a killed restore's recovery)."""
    if name == "history":
        _keep_audit_log(aside, live)
    if complete:
        _carry_named(aside, live, sources.history_skips() | {NOTIFY_STATE})
    else:
        staged_store = name == "history" and (live / sources.STORE_FILE).exists()
        _carry_all(aside, live, set(sources.STORE_COMPANIONS) if staged_store else set())
    kept = _prune_empty(aside)
    if not kept:  # everything came back (only lock files and empty folders were there)
        shutil.rmtree(aside)
        return None
    return {"aside": str(aside), "files": kept}


# ---- the journal: a restore killed midway is finished by the next restore or verify_restore -------------


def journal_path() -> Path:
    """Beside the history, never inside a folder the restore swaps; not matched by clean_stale's glob."""
    history = paths.history_dir()
    return history.parent / f".{history.name}.restore.journal"


def _write_journal(journal: dict) -> None:
    fsutil.atomic_write(journal_path(), json.dumps(journal, indent=1, sort_keys=True))


def _journal_step(journal: dict, name: str, step: str) -> None:
    journal["units"][name]["step"] = step
    _write_journal(journal)
    if os.environ.get(FAULT_PAUSE_ENV) == f"restore-{step}":
        logger.warning("paused at restore step %s (%s): waiting to be killed", step, FAULT_PAUSE_ENV)
        while True:
            signal.pause()


def _inode(path: str | Path) -> int | None:
    try:
        return os.lstat(path).st_ino
    except FileNotFoundError:
        return None


def recover() -> list[str]:
    """Finish a restore killed after it began swapping (call holding the backup lock). A unit whose restored
    data is live (its staged inode) gets the previous data set aside and what the archive does not replace
    carried back; a unit never swapped keeps its live data (its staging is stale and clean_stale removes it).
    The previous data is never deleted here: it is renamed, never removed. Returns what was done, one line each."""
    path = journal_path()
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except ValueError:
        raise ToolError(f"the restore journal {path} is not JSON",
                        f"look at the folders beside {paths.history_dir()} (*.pre-restore-*, .*.restore-*), "
                        f"then remove {path}") from None
    done = []
    for name, unit in sorted(journal.get("units", {}).items()):
        if unit.get("step") == "done" or unit.get("kind") != "dir":  # a file unit: a hard link kept it aside
            continue
        live, staging, aside = Path(unit["live"]), Path(unit["staging"]), Path(unit["aside"])
        if not os.path.lexists(live) and _inode(staging) == unit["staged_inode"]:
            os.rename(staging, live)  # killed between the two renames: the previous data is aside already
        if _inode(live) != unit["staged_inode"]:
            if _inode(staging) == unit["staged_inode"]:  # only the archive's data, still unswapped
                shutil.rmtree(staging)
            done.append(f"{name}: not swapped; the live data stays")
            continue
        if os.path.lexists(staging):  # exchanged: the previous data is at the staging path
            os.rename(staging, aside)
        kept = _settle_aside(name, aside, live, unit.get("complete", False)) if os.path.lexists(aside) else None
        done.append(f"{name}: finished the restore {journal.get('stamp')} killed after its swap"
                    + (f"; previous data kept in {kept['aside']} ({kept['files']} files)" if kept else ""))
    if journal.get("work"):  # scratch: copies of archive members
        shutil.rmtree(journal["work"], ignore_errors=True)
    path.unlink()
    return done


def unfinished_paths() -> set[Path]:
    """Aside and staging folders an unfinished restore's journal names: either may hold the only copy of
    what was live, so neither clean_stale nor gc may delete them before `recover` has run."""
    try:
        journal = json.loads(journal_path().read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return set()
    return {Path(unit["aside"]) for unit in journal.get("units", {}).values()} | \
        {Path(unit["staging"]) for unit in journal.get("units", {}).values()}

# ---- the effective manifest and the store ----------------------------------------------------------


def merge(manifests: list[dict]) -> dict:
    """What the chain restores: later archives win for the same path; the newest store counts."""
    files: dict[str, dict] = {}
    roots: dict[str, dict] = {}
    for manifest in manifests:  # store/ members go into the store, not onto the disk
        files.update((entry["path"], entry) for entry in manifest["files"] if not entry["path"].startswith("store/"))
        for name, root in manifest.get("roots", {}).items():
            roots[name] = {**root, "complete": bool(roots.get(name, {}).get("complete") or root.get("complete"))}
    store = next((m["store"] for m in reversed(manifests) if m.get("store", {}).get("member")),
                 manifests[-1].get("store", {}))
    return {"files": [files[path] for path in sorted(files)], "roots": roots, "store": store}


def _stage_store(effective: dict, staging: Staging) -> list | None:
    """Put the archived store where the live backend will find it; returns records to import later."""
    import sqlite3


    store = effective["store"]
    if not store.get("member"):
        return None
    staged_db = staging.staged(f"history/{sources.STORE_FILE}")
    if backend_name() == "sqlite":
        if store["mode"] == "records":  # one day's records go into a copy of the live store
            if not staged_db.exists() and db_path().exists():
                try:
                    sources.sqlite_copy(db_path(), staged_db)
                except sqlite3.DatabaseError as broken:
                    raise ToolError(f"the live store cannot be read to add the day's records to it ({broken})",
                                    "restore a daily or full backup instead (restore.py --kind auto)") from None
            target = SQLiteStore.open(create=True, path=staged_db)
            try:
                target.import_records(sources.read_records(staging.work / "records.jsonl"))
            finally:
                target.close()
            effective["files"] = [e for e in effective["files"] if e["path"] != f"history/{sources.STORE_FILE}"]
        return None
    if store["mode"] == "records":
        return list(sources.read_records(staging.work / "records.jsonl"))
    snapshot = SQLiteStore.open(path=staged_db)
    try:
        return list(snapshot.export_records())
    finally:
        snapshot.close()


def _import_records(records: list, aside: Path) -> int:
    """DynamoDB and friends: keep the live records aside as JSON lines, then write the archived ones."""

    store = open_store(create=True, restoring=True)
    try:
        aside.mkdir(parents=True, exist_ok=True)
        sources.write_records(aside / "store-records.jsonl", store.export_records())
        return store.import_records(records)
    finally:
        store.close()


# ---- the command ----------------------------------------------------------------------------------


def plan(day: date, source: str | None, kind: str = "auto") -> dict:
    """What a restore would do, from the manifests beside the archives; changes nothing."""
    chain, origin = choose(day, source, kind)
    staging = Staging(timeparse.utcnow().strftime(repository.STAMP))
    archives, roots = [], {}
    for backup in chain:
        manifest = repository.read_manifest(backup) or {}
        totals = manifest.get("totals", {})
        archives.append({**backup.row(), "files": totals.get("files"), "bytes": totals.get("bytes"),
                         "store": manifest.get("store")})
        for name, root in manifest.get("roots", {}).items():
            roots[name] = roots.get(name) or root.get("complete", False)
    targets = []
    for unit in staging.units.values():
        covered = [name for name in roots if staging.locate(f"{name}/x")[0].name == unit.name]
        if covered or unit.name == "history":
            mode = "replace" if unit.name == "history" and roots.get("history") else "overlay"
            targets.append({"name": unit.name, "path": str(unit.path), "exists": os.path.lexists(unit.path),
                            "mode": mode, "aside": str(staging.aside(unit)) if os.path.lexists(unit.path) else None})
    return {"date": day.isoformat(), "source": origin, "archives": archives, "targets": targets,
            "blocked_by": active_evolutions(), "restored": False}


def run(day: date, source: str | None, kind: str = "auto", meter: aws.Meter | None = None) -> dict:
    """Restore for real: fetch, verify into staging, swap, record; the live data is untouched on failure.

    meter (a terminal's progress bar) shows the bytes downloaded, then the bytes verified and unpacked."""
    chain, origin = choose(day, source, kind)
    return apply(chain, origin, day, meter)


def apply(chain: list[repository.Backup], origin: str, day: date, meter: aws.Meter | None = None) -> dict:
    """Restore a chain of backups (oldest first) that came from origin (local or s3), for --date day."""
    _refuse_if_active()
    files = [repository.fetch(backup, meter) for backup in chain]
    started = time.monotonic()
    recovered = recover()
    staging = Staging(timeparse.utcnow().strftime(repository.STAMP))
    cleaned = staging.clean_stale()
    staging.prepare()
    try:
        manifests = [archive.scan(path, sink=staging.sink, meter=meter) for path in files]
        effective = merge(manifests)
        if staging.kept_audit_log:
            effective["files"] = [e for e in effective["files"] if e["path"] != AUDIT_MEMBER]
        effective["files"] = [e for e in effective["files"] if e["path"] != NOTIFY_STATE_MEMBER]
        records = _stage_store(effective, staging)
        record = {"restored_at": timeparse.iso(), "date": day.isoformat(), "source": origin,
                  "archive": str(files[-1]), "key": chain[-1].key,
                  "archives": [{"archive": str(path), "key": backup.key, "kind": backup.kind,
                                "created_at": timeparse.iso(backup.created), "files": len(m["files"])}
                               for backup, path, m in zip(chain, files, manifests, strict=True)],
                  "manifest": effective}
        _write_json(staging.staged(f"history/{RESTORE_RECORD}"), record)
        _refuse_if_active()
        asides = staging.swap(effective["roots"].get("history", {}).get("complete", False))
        imported = _import_records(records, staging.aside(staging.history)) if records is not None else None
    except OSError as failure:
        if not staging.swapped:
            raise ToolError(f"restore stopped before changing live data: {failure.strerror or failure}",
                            "free some space or fix the cause and run it again") from None
        raise ToolError(f"restore failed after swapping in {', '.join(sorted(staging.swapped))}: {failure}",
                        f"the previous data is kept beside each target as *.pre-restore-{staging.stamp} or "
                        f".*.restore-{staging.stamp}; fix the cause and run the restore again") from None
    finally:
        staging.discard()
    return {"date": day.isoformat(), "source": origin, "restored": True, "archives": record["archives"],
            "record": str(paths.history_dir() / RESTORE_RECORD), "aside": asides, "imported_records": imported,
            "files": len(effective["files"]), "store": effective["store"], "cleaned": cleaned,
            "recovered": recovered,
            "audit_log": "kept" if staging.kept_audit_log else None, "seconds": round(time.monotonic() - started, 2)}


def asides() -> list[tuple[Path, datetime]]:
    """What restores moved aside (<target>.pre-restore-<stamp>) beside each target, with when, oldest first."""
    found = []
    for unit in sources.units():
        for path in unit.path.parent.glob(f"{glob.escape(unit.path.name)}.pre-restore-*"):
            match = _ASIDE.search(path.name)
            if match:
                found.append((path, datetime.strptime(match.group(1), repository.STAMP).replace(tzinfo=UTC)))
    return sorted(found, key=lambda item: item[1])


def _write_json(path: Path, document: dict) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, sort_keys=True, default=str), encoding="utf-8")


def load_record() -> dict:
    """The last restore's record (evolution_history/restore.json)."""
    import json

    path = paths.history_dir() / RESTORE_RECORD
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"no restore recorded at {path}",
                       "run python scripts/restore.py first, or check an archive with --archive PATH") from None
    except ValueError:
        raise ToolError(f"{path} is not valid JSON", "run the restore again") from None


def _archive_line(item: dict) -> str:
    size = f", {humanize.size(item['bytes'])}" if item.get("bytes") is not None else ""
    files = f", {item['files']} files" if item.get("files") is not None else ""
    return f"{item['key']} ({item['kind']}, made {timeparse.local(item['created_at'])}{files}{size})"


def describe(result: dict) -> list[dict]:
    """A plan or a result as (what, value) rows."""
    rows = []
    labels = ["base", "archive"] if len(result["archives"]) == 2 else ["archive"]
    for label, item in zip(labels, result["archives"], strict=True):
        rows.append({"what": label, "value": f"{_archive_line(item)} from {result['source']}"})
    if not result["restored"]:
        for target in result["targets"]:
            then = (f"current data moved aside to {target['aside']}" if target["exists"] else "does not exist yet")
            rows.append({"what": target["name"], "value": f"{target['path']}: {target['mode']}; {then}"})
        if result["blocked_by"]:
            rows.append({"what": "blocked", "value": f"evolution {', '.join(result['blocked_by'])} is active: "
                         "stop it before restoring"})
        rows.append({"what": "next", "value": "nothing changed; run again with --confirm to restore "
                     "(every checksum is verified before live data is touched)"})
        return rows
    for line in result.get("recovered") or []:
        rows.append({"what": "journal", "value": line})
    for name, aside in result["aside"].items():
        kept = f"previous data kept in {aside['aside']} ({aside['files']} files)" if aside else "nothing replaced"
        rows.append({"what": name, "value": f"restored; {kept}"})
    if result["imported_records"] is not None:
        rows.append({"what": "store", "value": f"imported {result['imported_records']} records"})
    if result["audit_log"]:
        rows.append({"what": "audit.log", "value": "the live one kept (append-only); this restore is appended to it"})
    rows.append({"what": "record", "value": result["record"]})
    rows.append({"what": "time", "value": f"{result['files']} files verified and restored in {result['seconds']} s"})
    return rows
