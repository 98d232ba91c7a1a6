"""The archive format: round trips, corruption found, safe extraction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from backup_helpers import craft, entry, flip_byte, link, regular

from lib.archives import archive

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


@pytest.mark.parametrize(("name", "size", "mtime", "mode"), [
    ("history/evo-1/task-001.json", 12345, 1_700_000_000.7, 0o100644), ("config/a", 0, 0, 0o600),
    ("history/" + "x" * 92, 8**11 - 1, 8**11 - 1, 0o777), ("history/" + "x" * 93, 1, 1, 0o644),
    (LONG, 10, 5, 0o644), ("history/big.bin", 8**11, 5, 0o644), ("history/old.log", 5, -1, 0o644),
])
def test_member_headers_are_the_bytes_tarfile_writes(name, size, mtime, mode):
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.type = size, int(mtime), mode & 0o777, tarfile.REGTYPE
    assert archive._header(name, size, mtime, mode) == info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


@pytest.mark.parametrize("count", [0, 1, 2, 50])
def test_the_room_for_the_manifest_is_that_of_the_written_out_placeholder(count):
    header = {"kind": "full", "roots": {"history": {"path": "/srv/h", "file": False, "complete": True}}}
    names = [f"history/évo-{index}/\"quoted\" {'x' * index}.json" for index in range(count)]
    written = len(archive.manifest_bytes(archive._placeholder_manifest(header, names, [])))
    size = written + 3 * archive.BLOCK + archive.WARNING_SLACK
    assert archive.manifest_reserve(header, names) == size + (size >> 8) + 1024


def test_short_writes_are_resumed_where_the_kernel_stopped(tmp_path, monkeypatch):
    real_writev = os.writev
    monkeypatch.setattr(archive.os, "writev", lambda fd, views: real_writev(fd, [bytes(views[0])[:3]]))
    parts = [memoryview(b"abcdefg"), memoryview(b""), memoryview(b"hi"), memoryview(b"jklmnop")]
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    try:
        archive._write_all(fd, parts)
    finally:
        os.close(fd)
    assert (tmp_path / "out").read_bytes() == b"abcdefghijklmnop"


def test_many_files_across_folders_and_stream_chunks_are_restored_whole(tmp_path):
    """Two writers, each file written from views that may span the decompressed chunks (no joining copy)."""
    sizes = [0, 1, 511, 512, 513, 4 * archive.CHUNK + 7] + [(index * 7919) % 40_000 for index in range(120)]
    files = {f"history/evo-{index % 17}/part-{index:03d}.bin": os.urandom(size) for index, size in enumerate(sizes)}
    target, manifest = write(tmp_path, files)
    out = tmp_path / "restored"
    assert archive.scan(target, sink=lambda name: out / name) == manifest
    for name, content in files.items():
        assert (out / name).read_bytes() == content, name


def test_the_archive_goes_to_disk_while_it_is_written_in_ranges_that_follow_each_other(tmp_path, monkeypatch):
    calls = []
    real = archive.start_writeback

    def recording(fd, offset, length):
        calls.append((offset, length, real(fd, offset, length)))
        return calls[-1][2]

    monkeypatch.setattr(archive, "start_writeback", recording)
    monkeypatch.setattr(archive, "WRITEBACK_STEP", 64 * 1024)
    names = [f"history/blob-{index}.bin" for index in range(4)]
    for name in names:
        (tmp_path / name.partition("/")[2]).write_bytes(os.urandom(archive.CHUNK))  # incompressible
    target = tmp_path / "tdev-full-20240115T020000Z.tar.zst"
    # one thread: compressed bytes reach the file as each member is added, whatever the machine's load
    with archive.ArchiveWriter(target, {"kind": "full"}, names, threads=0) as writer:
        for name in names:
            writer.add_file(name, tmp_path / name.partition("/")[2])
        manifest = writer.close()
    assert len(calls) == len(names) and all(length >= archive.WRITEBACK_STEP for _, length, _ in calls)
    assert all(offset + length == after for (offset, length, _), (after, _, _) in zip(calls, calls[1:], strict=False))
    assert calls[0][0] == archive.manifest_reserve({"kind": "full"}, names)
    assert all(started for _, _, started in calls) == sys.platform.startswith("linux")
    assert archive.scan(target) == manifest
