"""The archive format, safe extraction, selection by date and retention (in-process units)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import tarfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from backup_helpers import craft, entry, flip_byte, link, regular

from lib.archives import archive, repository
from lib.backup import restore, sources

LONG = "history/" + "/".join(["a-rather-long-folder-name"] * 6) + "/ünïcode output.json"


def write(tmp_path: Path, files: dict[str, bytes], warnings: int = 0) -> tuple[Path, dict]:
    source = tmp_path / "source"
    for name, content in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(content)
    target = tmp_path / "out" / "tdev-full-20240115T020000Z.tar.zst"
    with archive.ArchiveWriter(target, {"kind": "full", "roots": {}}, list(files)) as writer:
        writer.warnings.extend(f"warning {i:04d} " + "x" * 1000 for i in range(warnings))
        for name in files:
            writer.add_file(name, source / name)
        manifest = writer.close()
    return target, manifest


FILES = {"history/state.db": b"SQLite format 3\0" + bytes(5000), "history/evo-1/evolution.log": b"line\n" * 40000,
         "history/empty.json": b"", LONG: b'{"ok": true}', "config/settings.yaml": b"region: us-east-1\n"}


def test_round_trip_keeps_content_mtime_and_puts_the_manifest_first(tmp_path):
    target, manifest = write(tmp_path, FILES)
    assert [e["path"] for e in manifest["files"]] == list(FILES)
    assert manifest["totals"] == {"files": 5, "bytes": sum(map(len, FILES.values()))}
    assert json.loads(archive.sidecar_path(target).read_text()) == manifest
    assert archive.read_manifest(target) == manifest
    assert not archive.partial_path(target).exists()
    out = tmp_path / "restored"
    assert archive.scan(target, sink=lambda name: out / name) == manifest
    for name, content in FILES.items():
        assert (out / name).read_bytes() == content
        assert int((out / name).stat().st_mtime) == int((tmp_path / "source" / name).stat().st_mtime)


def test_scan_meters_the_bytes_it_checks(tmp_path):
    from meters import RecordingMeter

    target, manifest = write(tmp_path, FILES)
    meter = RecordingMeter()
    archive.scan(target, meter=meter)
    assert meter.bars == [(f"verify {target.name}", manifest["totals"]["bytes"], manifest["totals"]["bytes"])]


def test_the_archive_is_an_ordinary_tar_zst(tmp_path):
    if subprocess.run(["tar", "--zstd", "--version"], capture_output=True).returncode:
        pytest.skip("tar without zstd")
    target, _ = write(tmp_path, FILES)
    out = tmp_path / "by-tar"
    out.mkdir()
    subprocess.run(["tar", "--zstd", "-xf", str(target), "-C", str(out)], check=True)
    assert json.loads((out / "manifest.json").read_text())["kind"] == "full"
    assert (out / LONG).read_bytes() == FILES[LONG]


def test_manifest_larger_than_its_room_is_assembled_in_front(tmp_path):
    target, manifest = write(tmp_path, FILES, warnings=300)  # 300 KB of warnings, more than the slack
    assert len(manifest["warnings"]) == 300
    assert archive.scan(target) == manifest
    assert sorted(target.parent.iterdir()) == sorted([target, archive.sidecar_path(target)])


def test_a_flipped_byte_anywhere_is_detected(tmp_path):
    target, _ = write(tmp_path, FILES)
    pristine = target.read_bytes()
    size = len(pristine)
    padding_end = archive.manifest_reserve({"kind": "full", "roots": {}}, list(FILES))
    for offset in (padding_end - 10, size // 3, size // 2, size - 30):
        flip_byte(target, offset)
        with pytest.raises(archive.ArchiveDamaged):
            archive.scan(target)
        target.write_bytes(pristine)
    archive.scan(target)


def test_a_truncated_archive_is_detected(tmp_path):
    target, _ = write(tmp_path, FILES)
    with open(target, "r+b") as handle:
        handle.truncate(target.stat().st_size * 2 // 3)
    with pytest.raises(archive.ArchiveDamaged):
        archive.scan(target)


def test_a_file_that_shrinks_while_read_is_padded_and_reported(tmp_path, monkeypatch):
    source = tmp_path / "growing.log"
    source.write_bytes(b"x" * 1000)
    real_fstat = archive.os.fstat

    def stale_fstat(fd):  # the size seen before a log rotation truncated the file
        info = real_fstat(fd)
        if os.path.samestat(info, os.stat(source)):
            return os.stat_result((*info[:6], 3 * archive.CHUNK + 1000, *info[7:]))
        return info

    monkeypatch.setattr(archive.os, "fstat", stale_fstat)
    target = tmp_path / "tdev-full-20240115T020000Z.tar.zst"
    with archive.ArchiveWriter(target, {"kind": "full"}, ["history/growing.log"]) as writer:
        writer.add_file("history/growing.log", source)
        manifest = writer.close()
    monkeypatch.undo()
    assert manifest["warnings"] == [f"{source} shrank by {3 * archive.CHUNK} bytes during the backup"]
    out = tmp_path / "out"
    archive.scan(target, sink=lambda name: out / name)
    assert (out / "history/growing.log").read_bytes() == b"x" * 1000 + bytes(3 * archive.CHUNK)


def test_abort_leaves_nothing(tmp_path):
    target = tmp_path / "tdev-daily-20240115T020000Z.tar.zst"
    with pytest.raises(RuntimeError), archive.ArchiveWriter(target, {"kind": "daily"}, ["history/a"]) as writer:
        (tmp_path / "a").write_bytes(b"x" * 100)
        writer.add_file("history/a", tmp_path / "a")
        raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


HOSTILE = {
    "dot-dot in the manifest": ([entry("history/../../evil", b"x")], [(regular("history/../../evil"), b"x")]),
    "absolute path": ([entry("history/ok", b"x")], [(regular("/tmp/evil-absolute"), b"x")]),
    "dot-dot member": ([entry("history/ok", b"x")], [(regular("history/../../evil"), b"x")]),
    "escaping symlink": ([entry("history/ok", b"x")], [(link("history/passwd", "../../../etc/passwd"), b"")]),
    "absolute symlink": ([entry("history/ok", b"x")], [(link("history/passwd", "/etc/passwd"), b"")]),
    "escaping hard link": ([entry("history/ok", b"x")], [(link("history/shadow", "/etc/shadow", hard=True), b"")]),
    "outside every root": ([entry("etc/passwd", b"x")], [(regular("etc/passwd"), b"x")]),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_are_refused_before_writing_anything_outside(tmp_path, case):
    files, members = HOSTILE[case]
    hostile = craft(tmp_path / "hostile.tar.zst", files, members)
    out = tmp_path / "area" / "staging"
    written = []

    def sink(name):
        written.append(name)
        return out / name

    with pytest.raises((archive.UnsafeArchive, archive.ArchiveDamaged)) as refused:
        archive.scan(hostile, sink=sink)
    assert "leaves the target" in str(refused.value) or "absolute" in str(refused.value) or \
        "'..'" in str(refused.value) or "not under" in str(refused.value)
    assert written == []
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil-absolute").exists()


def test_devices_and_unlisted_members_are_refused(tmp_path):
    device = tarfile.TarInfo("history/null")
    device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3
    hostile = craft(tmp_path / "dev.tar.zst", [entry("history/ok", b"x")], [(device, b"")])
    with pytest.raises(archive.UnsafeArchive, match="device"):
        archive.scan(hostile)
    extra = craft(tmp_path / "extra.tar.zst", [], [(regular("history/sneaked"), b"x")])
    with pytest.raises(archive.ArchiveDamaged, match="not in the manifest"):
        archive.scan(extra)
    wrong = craft(tmp_path / "wrong.tar.zst", [entry("history/a", b"y")], [(regular("history/a"), b"x")])
    with pytest.raises(archive.ArchiveDamaged, match="SHA-256"):
        archive.scan(wrong)


# ---- names, selection by date, retention -----------------------------------------------------------

def backups(*specs: str) -> list[repository.Backup]:
    """'daily 2024-01-15T02:00' -> a Backup made then (its day folder is the same day)."""
    made = []
    for spec in specs:
        kind, when = spec.split()
        created = datetime.fromisoformat(when).replace(tzinfo=UTC)
        made.append(repository.parse_key(repository.key_for(kind, created.date(), created)))
    return made


def test_keys_round_trip_and_odd_names_are_ignored():
    created = datetime(2024, 1, 15, 2, 0, 5, tzinfo=UTC)
    key = repository.key_for("daily", date(2024, 1, 15), created)
    assert key == "daily/2024-01-15/tdev-daily-20240115T020005Z.tar.zst"
    assert repository.parse_key(key).created == created
    for odd in ("daily/2024-01-15/tdev-full-20240115T020005Z.tar.zst", "daily/x/.tdev-daily-1.tar.zst.partial",
                "weekly/2024-01-15/tdev-weekly-20240115T020005Z.tar.zst"):
        assert repository.parse_key(odd) is None


def test_restore_date_picks_the_newest_before_the_end_of_that_day_over_its_full_base():
    # noon UTC stays on the same local day in every zone the tests may run in
    items = backups("full 2024-01-14T12:00", "daily 2024-01-14T11:00", "daily 2024-01-15T12:00",
                    "daily 2024-01-17T12:00", "history 2024-01-15T12:30")
    chain = repository.chain_for(items, date(2024, 1, 15))
    assert [b.key for b in chain] == [items[0].key, items[2].key]
    assert repository.chain_for(items, date(2024, 1, 14)) == [items[0]]  # the full one is newer that day
    assert repository.chain_for(items, date(2024, 1, 13)) == []
    assert repository.chain_for(items, date(2024, 1, 15), "history") == [items[4]]


def test_retention_keeps_newest_per_day_and_per_week():
    days = [f"daily 2024-01-{d:02d}T02:00" for d in range(1, 16)] + ["daily 2024-01-15T14:00"]
    weeks = [f"full 2024-01-{d:02d}T03:00" for d in (1, 7, 8, 14, 15)]
    items = backups(*days, *weeks)
    doomed, rescued = repository.retention_plan(items, keep_daily=3, keep_weekly=2, keep_min=3)
    kept = [b for b in items if b.key not in {b.key for b in doomed}]
    assert [b.created.strftime("%d %H") for b in kept if b.kind == "daily"] == ["13 02", "14 02", "15 14"]
    assert [b.created.strftime("%d") for b in kept if b.kind == "full"] == ["14", "15"]  # weeks 2 and 3
    assert rescued == []  # no backup holds a store with history: the rules alone decide
    assert repository.retention_plan(items[:1], keep_daily=0, keep_weekly=0) == ([], [])  # never the last one


def test_retention_keeps_the_newest_backup_holding_the_store_and_keep_min_of_them():
    items = backups(*[f"daily 2024-01-{d:02d}T02:00" for d in range(1, 8)])
    for backup in items:
        backup.rows = 10 if backup.day.day <= 4 else 0  # the store was lost on the 5th
    doomed, rescued = repository.retention_plan(items, keep_daily=2, keep_weekly=1, keep_min=1)
    assert [b.day.day for b in rescued] == [4]
    assert sorted(b.day.day for b in doomed) == [1, 2, 3, 5]
    doomed, rescued = repository.retention_plan(items, keep_daily=2, keep_weekly=1, keep_min=3)
    assert [b.day.day for b in rescued] == [4, 3, 2] and sorted(b.day.day for b in doomed) == [1, 5]


# ---- roots and swapping ------------------------------------------------------------------------------

def test_nested_log_folder_is_part_of_the_history(tdev, monkeypatch):
    monkeypatch.setenv("TDEV_LOG_DIR", str(tdev.history / "logs"))
    units = sources.units()
    assert [u.name for u in units] == ["history", "config", "mcp"]
    locate = sources.locator()
    unit, relative = locate("logs/runner.log")
    assert (unit.name, relative) == ("history", "logs/runner.log")
    assert locate("mcp/claude.mcp.json")[0].is_file
    with pytest.raises(LookupError):
        locate("elsewhere/file")


def test_swap_without_rename_exchange_still_keeps_the_old_data(tdev, monkeypatch):
    monkeypatch.setattr(restore, "_EXCHANGE", None)
    (tdev.history / "keep").mkdir(parents=True)
    (tdev.history / "keep" / "old.txt").write_text("old")
    (tdev.history / "state.db-wal").write_text("stale wal")
    staging = restore.Staging("20240115T000000Z")
    staging.prepare()
    staging.sink("history/state.db").write_text("new db")
    swapped = staging.swap(complete=False)
    staging.discard()
    assert (tdev.history / "state.db").read_text() == "new db"
    assert (tdev.history / "keep" / "old.txt").read_text() == "old"
    assert not (tdev.history / "state.db-wal").exists()  # never pair a stale WAL with a restored database
    assert Path(swapped["history"]["aside"], "state.db-wal").read_text() == "stale wal"


def test_rename_exchange_swaps_two_folders(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "x").write_text("a")
    (second / "x").write_text("b")
    if not restore.exchange(first, second):
        pytest.skip("no renameat2 here")
    assert (first / "x").read_text() == "b" and (second / "x").read_text() == "a"


def test_two_restores_in_one_second_get_their_own_names(tdev):
    (tdev.history / "x").mkdir(parents=True)
    first = restore.Staging("20240115T000000Z")
    restore.Staging("20240115T000000Z").aside(first.history).mkdir()
    second = restore.Staging("20240115T000000Z")
    assert second.stamp == "20240115T000000Z-2" and not second.aside(second.history).exists()


@pytest.mark.parametrize("atomic", [True, False])
def test_a_failure_right_after_the_swap_never_discards_the_previous_data(tdev, monkeypatch, atomic):
    if atomic and restore._EXCHANGE is None:
        pytest.skip("no renameat2 here")
    if not atomic:
        monkeypatch.setattr(restore, "_EXCHANGE", None)
    (tdev.history / "old.txt").parent.mkdir(parents=True)
    (tdev.history / "old.txt").write_text("previous")
    staging = restore.Staging("20240115T000000Z")
    staging.prepare()
    staging.sink("history/new.txt").write_text("restored")
    real_rename = os.rename

    def full_disk_on_the_aside(source, target):
        if str(target).endswith(".pre-restore-20240115T000000Z"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_rename(source, target)

    monkeypatch.setattr(restore.os, "rename", full_disk_on_the_aside)
    with pytest.raises(OSError):
        staging.swap(complete=False)
    staging.discard()
    if atomic:  # swapped: the restored data is live, the previous data waits at the staging path
        assert (tdev.history / "new.txt").read_text() == "restored"
        assert (staging.staging(staging.history) / "old.txt").read_text() == "previous"
    else:  # nothing moved: live data as it was, the staging gone
        assert (tdev.history / "old.txt").read_text() == "previous"
        assert not staging.staging(staging.history).exists()
