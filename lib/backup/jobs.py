"""Making a backup: snapshot the store, stream the files into an archive, copy it to S3, prune.

lib/ops/backups.py holds the lock and writes the audit line; this module does the work and
returns what it did as a plain dict (printed as a table or as JSON).
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, timedelta
from pathlib import Path

import lib
from lib import config, humanize, timeparse
from lib.adapters import aws
from lib.archives import archive, repository
from lib.backup import sources
from lib.errors import ToolError
from lib.store import backend_name, lost_store, open_store

#: A progress display over items with a label (lib.cli.progress on a terminal); the library never draws one itself.
Progress = Callable[[list, str], AbstractContextManager]


def _header(kind: str, day: date, created, store: sources.StoreCopy, selection: sources.Selection) -> dict:
    start, end = sources.window(kind, day)
    return {
        "kind": kind, "date": day.isoformat(), "created_at": timeparse.iso(created), "host": socket.gethostname(),
        "tool_version": lib.__version__, "store": store.describe(), "roots": selection.roots,
        "logs_window": {"since": timeparse.iso(start) if start else None, "until": timeparse.iso(end) if end else None},
        "evolutions": selection.evolutions,
    }


def _preview(kind: str, day: date, key: str) -> dict:

    store = open_store()
    try:
        evolutions = [e["id"] for e in sources.day_evolutions(store, day)] if kind == "history" else []
        counts = store.counts() if store.exists else {}
    finally:
        store.close()
    selection = sources.select(kind, day, evolutions)
    return {"kind": kind, "date": day.isoformat(), "dry_run": True, "archive": str(repository.local_dir() / key),
            "files": len(selection.items), "bytes_in": selection.bytes, "store": {"backend": backend_name(),
            "counts": counts}, "evolutions": evolutions, "warnings": selection.warnings}


class StoreMissing(ToolError):
    """The store is gone while the history shows there was one: a backup now would hold no store."""


def refuse_missing_store() -> None:
    """Refuse to archive a history whose store is lost: such a backup would later pass for a good one."""
    found = lost_store()
    if found:
        raise StoreMissing(f"{found}; a backup now would hold no store",
                           f"restore it first: {repository.restore_command()}")


def _offsite_result(offsite: repository.Offsite, dry_run: bool) -> dict:
    """The s3 part of the result before any upload: disabled (not wanted), skipped (wanted: a failure)."""
    if not offsite.wanted:
        return {"status": "disabled", "note": f"no off-site copy ({offsite.reason})"}
    if not offsite.ready:
        return {"status": "skipped", "error": f"the off-site copy cannot be made: {offsite.reason}",
                "hint": "fix the credentials, or say no off-site copy is wanted: --no-s3, or settings "
                        "aws.backup_bucket: null"}
    return {"status": "would upload" if dry_run else "pending", "url": offsite.reason}


def create(kind: str, day: date | None = None, s3: bool = True, dry_run: bool = False, prune: bool = True,
           folder: Path | None = None, progress: Progress | None = None, meter: aws.Meter | None = None) -> dict:
    """Make one backup of a kind (daily, full, history) into folder (default: the backup folder);
    progress shows the files archived, meter the bytes sent to S3."""
    refuse_missing_store()
    created = timeparse.utcnow()
    day = day or created.astimezone().date()
    key = repository.key_for(kind, day, created)
    while not dry_run and ((folder or repository.local_dir()) / key).exists():  # keys name the second:
        created += timedelta(seconds=1)                            # never replace an archive made in it
        key = repository.key_for(kind, day, created)
    offsite = repository.offsite(s3)
    if dry_run:
        result = _preview(kind, day, key)
    else:
        result = _write(kind, day, created, key, folder or repository.local_dir(), progress)
    result["s3"] = _offsite_result(offsite, dry_run)
    if result["s3"]["status"] == "pending":
        try:
            result["s3"] = {"status": "uploaded", **repository.upload(Path(result["archive"]), key, meter)}
        except ToolError as failure:
            result["s3"] = {"status": "failed", "error": f"the off-site copy failed: {failure}"}
    if prune:
        planned = None
        if dry_run:
            planned = repository.parse_key(key)
            planned.rows = repository.history_rows(result["store"]["counts"])
        result["retention"] = apply_retention(dry_run, offsite.ready and result["s3"]["status"] != "failed",
                                              planned=planned)
    return result


def _write(kind: str, day: date, created, key: str, folder: Path, progress: Progress | None) -> dict:
    target = folder / key
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=".work-", dir=folder) as work, \
            sources.snapshot(kind, day, Path(work)) as (store, evolutions):
        selection = sources.select(kind, day, evolutions)
        items = [(item.member, item.path) for item in selection.items]
        if store.member:
            items.append((store.member, store.path))
        header = _header(kind, day, created, store, selection)
        with archive.ArchiveWriter(target, header, [name for name, _ in items]) as writer:
            writer.warnings.extend(selection.warnings)
            with progress(items, f"backup {kind}") if progress else contextlib.nullcontext(items) as bar:
                for name, path in bar:
                    writer.add_file(name, path)
            manifest = writer.close()
    seconds = time.monotonic() - started
    size = target.stat().st_size
    totals = manifest["totals"]
    return {"kind": kind, "date": day.isoformat(), "archive": str(target), "key": key,
            "manifest": str(archive.sidecar_path(target)), "files": totals["files"], "bytes_in": totals["bytes"],
            "bytes_out": size, "seconds": round(seconds, 2),
            "mb_per_s": round(totals["bytes"] / (1 << 20) / seconds, 1) if seconds else None,
            "store": manifest["store"], "evolutions": evolutions, "warnings": manifest["warnings"]}


def apply_retention(dry_run: bool, s3: bool, planned: repository.Backup | None = None) -> dict:
    """Delete (or, dry run, list) the backups retention does not keep, locally and in S3.

    A dry run counts the backup it would have made (planned), so the preview matches the real run.
    """
    keep = config.settings()["retention"]
    rules = keep["keep_daily"], keep["keep_weekly"], keep["keep_min"]
    extra = [planned] if planned else []
    local, kept_local = repository.retention_plan(repository.list_local() + extra, *rules)
    remote, kept_remote = repository.retention_plan(repository.list_s3() + extra, *rules) if s3 else ([], [])
    if not dry_run:
        repository.delete_local(local)
        if remote:
            repository.delete_s3(remote)
    verb = "would delete" if dry_run else "deleted"
    return {"keep_daily": rules[0], "keep_weekly": rules[1], "keep_min": rules[2], "action": verb,
            "local": [b.key for b in local], "s3": [b.key for b in remote],
            "kept_for_store": [b.key for b in kept_local] + [f"s3:{b.key}" for b in kept_remote]}


DESCRIBE_COLUMNS = [("what", "WHAT"), ("value", "VALUE")]


def describe(result: dict) -> list[dict]:
    """The result as (what, value) rows for the table."""
    rows = [{"what": "archive", "value": result["archive"] + ("  (dry run: not written)" if result.get("dry_run")
                                                                else "")}]
    read = humanize.size(result["bytes_in"])
    if result.get("dry_run"):
        rows.append({"what": "would read", "value": f"{result['files']} files, {read}"})
    else:
        ratio = result["bytes_in"] / result["bytes_out"] if result["bytes_out"] else 0
        rows.append({"what": "files", "value": f"{result['files']} files, {read} in, "
                     f"{humanize.size(result['bytes_out'])} out ({ratio:.1f}x) in {result['seconds']} s"})
    counts = result["store"].get("counts") or {}
    rows.append({"what": "store", "value": f"{result['store']['backend']}: "
                 + (", ".join(f"{n} {k}" for k, n in counts.items()) or "empty")})
    s3 = result["s3"]
    rows.append({"what": "s3", "value": f"{s3['status']}: {s3.get('url') or s3.get('error') or s3.get('note')}"})
    retention = result.get("retention")
    if retention:
        doomed = retention["local"] + [f"s3:{key}" for key in retention["s3"]]
        rows.append({"what": "retention", "value": f"{retention['action']} {len(doomed)}: {', '.join(doomed)}"
                     if doomed else f"nothing to delete (keep {retention['keep_daily']} daily, "
                     f"{retention['keep_weekly']} weekly)"})
        if retention["kept_for_store"]:
            rows.append({"what": "kept", "value": f"{', '.join(retention['kept_for_store'])}: their store holds "
                         f"history (the newest such backup, and at least {retention['keep_min']}, are always kept)"})
    rows.extend({"what": "warning", "value": warning} for warning in result.get("warnings", []))
    return rows
