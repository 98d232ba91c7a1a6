"""Verify restored data, or an archive, against a manifest.

Live mode checks the data a restore put in place against restore.json's effective
manifest: every file's size and SHA-256 (files changed after the restore, such as a log
that grew, are counted but not compared), the store's integrity check, row counts (at
least those of the backup) and that every config file loads. Archive mode reads an
archive end to end against its own manifest, and checks the store and config inside it.
The outcome is kept in the store (meta "last-verify") for health_check.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lib import config, locks, paths, timeparse
from lib.archives import archive
from lib.backup import restore, sources
from lib.checks import Result, worst
from lib.errors import Conflict, ToolError
from lib.store import open_store
from lib.store.sqlite import SQLiteStore

AREA = "restore"


def _result(name: str, status: str, summary: str, started: float) -> Result:
    return Result(name, AREA, status, summary, int((time.monotonic() - started) * 1000))


def _digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _file_state(entry: dict, locate, restored_at: float) -> str:
    unit, relative = locate(entry["path"])
    path = unit.path if unit.is_file else unit.path / relative
    try:
        info = path.stat()
    except FileNotFoundError:
        return "missing"
    if info.st_mtime > restored_at:
        return "changed"
    if info.st_size != entry["size"]:
        return "wrong size"
    return "ok" if _digest(path) == entry["sha256"] else "checksum mismatch"


def check_files(entries: list[dict], restored_at: float) -> Result:
    """Every live file of the manifest, hashed in parallel (hashlib releases the GIL)."""
    started = time.monotonic()
    locate = sources.locator()
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
        states = list(pool.map(lambda entry: _file_state(entry, locate, restored_at), entries))
    bad = [f"{entry['path']}: {state}" for entry, state in zip(entries, states, strict=True)
           if state not in ("ok", "changed")]
    matched, changed = states.count("ok"), states.count("changed")
    note = f"; {changed} changed since the restore (not compared)" if changed else ""
    if bad:
        more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
        return _result("checksums", "critical", f"{len(bad)} of {len(entries)} files differ: "
                       f"{'; '.join(bad[:3])}{more}{note}", started)
    return _result("checksums", "ok", f"{matched} files match their SHA-256{note}", started)


def _count_key(key: str) -> str:
    return sources.KIND_COUNT_KEYS.get(key, key)


def compare_counts(found: dict, expected: dict, exact: bool, started: float) -> Result:
    found = {_count_key(k): v for k, v in found.items()}
    expected = {_count_key(k): v for k, v in expected.items()}
    short = [f"{key} {found.get(key, 0)} < {count}" for key, count in expected.items()
             if found.get(key, 0) < count or (exact and found.get(key, 0) != count)]
    if short:
        return _result("rows", "critical", f"rows missing against the backup: {', '.join(short)}", started)
    shown = ", ".join(f"{found.get(key, 0)} {key}" for key in expected) or "no rows in the backup"
    return _result("rows", "ok", f"{shown} (at least the backup's)" if not exact else shown, started)


def check_live_store(store_info: dict) -> list[Result]:

    started = time.monotonic()
    store = open_store()
    try:
        if not store.exists:
            status = "critical" if store_info.get("member") else "ok"
            return [_result("store", status, "no store here" + (" but the backup had one" if status != "ok" else ""),
                            started)]
        verdict = store.check()
        integrity = _result("store", "ok" if verdict == "ok" else "critical",
                            f"{store.backend} integrity check: {verdict}", started)
        return [integrity, compare_counts(store.counts(), store_info.get("counts") or {}, False, time.monotonic())]
    finally:
        store.close()


def check_config_files(folder: Path, mcp_file: Path | None, label: str) -> Result:
    """Every YAML file loads (and matches its schema when it has one); the MCP config is JSON."""
    started = time.monotonic()
    problems, checked = [], 0
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        checked += 1
        try:
            data = config.read_yaml(path)
            if path.stem in config.SCHEMAS:
                config.validate(path.stem, {} if data is None else data)
        except ToolError as failure:
            problems.append(f"{label}{path.name}: {failure.message.split(': ', 1)[-1]}")
    if mcp_file and mcp_file.is_file():
        checked += 1
        try:
            json.loads(mcp_file.read_text(encoding="utf-8"))
        except ValueError as bad:
            problems.append(f"MCP config {mcp_file.name}: not JSON ({bad})")
    if problems:
        return _result("config", "critical", "; ".join(problems), started)
    return _result("config", "ok", f"{checked} config files load", started)


def finish_killed_restore() -> list[Result]:
    """A restore killed midway is finished first (its journal), under the backup lock; a running one is said."""
    started = time.monotonic()
    if not restore.journal_path().exists():
        return []
    try:
        with locks.backup_lock():
            recovered = restore.recover()
    except Conflict:
        return [_result("journal", "warning", "a restore is running: verify again once it has ended",
                        started)]
    return [_result("journal", "warning", "; ".join(recovered), started)] if recovered else []


def verify_live() -> tuple[list[Result], str]:
    """The live data against the last restore's manifest."""
    finished = finish_killed_restore()
    record = restore.load_record()
    restored_at = timeparse.from_iso(record["restored_at"]).timestamp()
    manifest = record["manifest"]
    results = [*finished, check_files(manifest["files"], restored_at), *check_live_store(manifest.get("store", {})),
               check_config_files(paths.config_dir(), paths.mcp_config(), "")]
    return results, f"restore of {record.get('key')} at {record['restored_at']}"


def verify_archive(path: Path) -> tuple[list[Result], str]:
    """An archive against its own manifest, with its store and config checked in a scratch folder."""
    started = time.monotonic()
    if not path.is_file():
        raise ToolError(f"{path}: no such archive", "give the path of a .tar.zst made by backup.py")
    with tempfile.TemporaryDirectory(prefix="tdev-verify-") as scratch:
        inside = Path(scratch)

        def keep(member: str) -> Path | None:
            wanted = member.startswith(("store/", "config/", "mcp/")) or member == f"history/{sources.STORE_FILE}"
            return inside / member if wanted else None

        try:
            manifest = archive.scan(path, sink=keep)
        except (archive.ArchiveDamaged, archive.UnsafeArchive) as failure:
            return [_result("checksums", "critical", str(failure), started)], str(path)
        totals = manifest["totals"]
        results = [_result("checksums", "ok", f"{totals['files']} files ({totals['bytes']} bytes) match their "
                           "SHA-256", started)]
        results.append(_archived_store(inside, manifest.get("store", {})))
        mcp = next(inside.glob("mcp/*"), None)
        results.append(check_config_files(inside / "config", mcp, "config/"))
    return results, str(path)


def _archived_store(inside: Path, store_info: dict) -> Result:

    started = time.monotonic()
    if store_info.get("mode") == "snapshot":
        snapshot = SQLiteStore.open(path=inside / "history" / sources.STORE_FILE)
        try:
            verdict, counts = snapshot.check(), snapshot.counts()
        finally:
            snapshot.close()
        if verdict != "ok":
            return _result("store", "critical", f"SQLite integrity check: {verdict}", started)
    elif store_info.get("mode") == "records":
        counts = {}
        for kind, _ in sources.read_records(inside / sources.RECORDS_MEMBER):
            counts[_count_key(kind)] = counts.get(_count_key(kind), 0) + 1
    else:
        return _result("store", "ok", "the backup holds no store", started)
    rows = compare_counts(counts, store_info.get("counts") or {}, True, started)
    return _result("store", rows.status, f"{store_info['mode']}: {rows.summary}", started)


def record(results: list[Result], mode: str, target: str) -> dict:
    """Keep the outcome as meta "last-verify" (when there is a store to keep it in)."""

    outcome = {"time": timeparse.iso(), "status": worst(results), "mode": mode, "target": target,
               "summary": "; ".join(f"{r.name} {r.status}" for r in results)}
    store = open_store()
    try:
        if store.exists:
            store.set_meta("last-verify", outcome)
    finally:
        store.close()
    return outcome


def run(archive_path: Path | None) -> tuple[list[Result], str]:
    """verify_restore.py: verify, record, and return the results with what was verified."""
    results, target = verify_archive(archive_path) if archive_path else verify_live()
    record(results, "archive" if archive_path else "live", target)
    return results, target
