"""The archive format: one zstd-compressed tar stream whose first member is the manifest.

The file is concatenated zstd frames, which every zstd reader (and `tar --zstd -xf`)
reads as one stream: the manifest member, a skippable frame (padding), the data members,
the end-of-archive blocks. The writer reserves room for the manifest, streams and hashes
the data after it, then writes the manifest into the room; all of it under a hidden
`.partial` name that is renamed only when complete, so a kill -9 at any point never
leaves a complete-looking archive.

Reading is the mirror image: a background thread decompresses (zstd releases the GIL),
the caller parses tar headers and hashes, and two writer threads copy verified files out.
Nothing is trusted that was not checked: the manifest is validated before any byte is
written, every member must be a regular file listed in it with the same size and
SHA-256, the padding must be zeros, and the zstd frames carry their own checksums.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import queue
import re
import struct
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from lib.archives import KINDS
from lib.errors import ToolError
from lib.fsutil import atomic_write

if TYPE_CHECKING:
    from lib.adapters.aws import Meter

FORMAT = "tdev-backup/1"
MANIFEST_MEMBER = "manifest.json"
ROOT_NAMES = ("history", "config", "logs", "mcp", "store")
BLOCK = 512
CHUNK = 1 << 20
LEVEL = 3
WRITERS = 2  # threads that write restored files: creating files costs kernel time that two cores share
POOLED_FILE = 8 * CHUNK  # files up to this size are written by those threads
WARNING_SLACK = 64 * 1024  # room for warnings written during the backup
WRITEBACK_STEP = 16 * CHUNK  # the archive's pages are sent to disk every this many bytes, not all at the fsync
SKIPPABLE_MAGIC = 0x184D2A50
_ZERO_BLOCK = bytes(BLOCK)
_ZEROS = memoryview(bytes(CHUNK))
_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_META_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)


class ArchiveDamaged(ToolError):
    """The archive does not match its manifest or cannot be read: never restore from it."""


class UnsafeArchive(ToolError):
    """A member would land outside the target (absolute path, '..', escaping link) or is a device."""


# ---- names and manifest ------------------------------------------------------------------


def check_member_path(name: str) -> str:
    """A member name must be <root>/<relative path> with no way out of the target."""
    if not isinstance(name, str) or not name or "\0" in name:
        raise UnsafeArchive(f"member name {name!r} is not a path", "the archive was not made by backup.py")
    if name.startswith("/"):
        raise UnsafeArchive(f"member {name!r} is an absolute path", "refusing to restore from this archive")
    parts = name.split("/")
    if ".." in parts:
        raise UnsafeArchive(f"member {name!r} climbs out of the target with '..'", "refusing to restore from it")
    if any(part in ("", ".") for part in parts) or len(parts) < 2 or parts[0] not in ROOT_NAMES:
        raise UnsafeArchive(f"member {name!r} is not under one of {', '.join(ROOT_NAMES)}",
                            "refusing to restore from this archive")
    return name


def _link_problem(info: tarfile.TarInfo) -> str:
    target = info.linkname
    base = os.path.dirname(info.name) if info.issym() else ""
    resolved = os.path.normpath(os.path.join(base, target))
    if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
        return f"member {info.name!r} is a link to {target!r} that leaves the target"
    return f"member {info.name!r} is a link ({target!r}); backups hold regular files only"


def check_member_type(info: tarfile.TarInfo) -> None:
    """Regular files (and harmless directories) only: links and devices are refused."""
    if info.issym() or info.islnk():
        raise UnsafeArchive(_link_problem(info), "refusing to restore from this archive")
    if info.isdev():
        raise UnsafeArchive(f"member {info.name!r} is a device or FIFO", "refusing to restore from this archive")
    if not (info.isreg() or info.isdir()):
        raise UnsafeArchive(f"member {info.name!r} has unsupported type {info.type!r}",
                            "refusing to restore from this archive")


def validate_manifest(manifest) -> dict:
    """Check the manifest's shape and every path in it, before anything is written."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveDamaged("the manifest is not a T-Developer backup manifest",
                             f"expected format {FORMAT}; use an archive made by backup.py")
    if manifest.get("kind") not in KINDS or not isinstance(manifest.get("files"), list):
        raise ArchiveDamaged("the manifest has no kind or no file list", "use another backup")
    seen = set()
    for entry in manifest["files"]:
        if not isinstance(entry, dict):
            raise ArchiveDamaged("the manifest has a malformed file entry", "use another backup")
        check_member_path(entry.get("path"))
        if entry["path"] in seen:
            raise ArchiveDamaged(f"the manifest lists {entry['path']!r} twice", "use another backup")
        seen.add(entry["path"])
        size, digest = entry.get("size"), entry.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or not _SHA256.match(str(digest)):
            raise ArchiveDamaged(f"the manifest entry for {entry['path']!r} has no valid size or SHA-256",
                                 "use another backup")
    return manifest


def manifest_bytes(manifest: dict) -> bytes:
    return json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")


# ---- writing --------------------------------------------------------------------------------


def _padding(size: int) -> int:
    return -size % BLOCK


def _header(name: str, size: int, mtime: float, mode: int) -> bytes:
    """A regular file's tar header: plain ustar when it fits (most members), else tarfile's pax form."""
    mtime = int(mtime)
    if name.isascii() and len(name) <= 100 and size < 8**11 and 0 <= mtime < 8**11:
        return _ustar_header(name.encode("ascii"), size, mtime, mode & 0o777)
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.type = size, mtime, mode & 0o777, tarfile.REGTYPE
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


_USTAR = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s8s8s155s12x")


def _ustar_header(name: bytes, size: int, mtime: int, mode: int) -> bytes:
    """The bytes tarfile writes for such a member (uid/gid 0, no owner names), without its per-field cost."""
    block = bytearray(_USTAR.pack(name, b"%07o" % mode, b"0000000", b"0000000", b"%011o" % size, b"%011o" % mtime,
                                  b" " * 8, tarfile.REGTYPE, b"", tarfile.POSIX_MAGIC, b"", b"", b"", b"", b""))
    block[148:155] = b"%06o\0" % sum(block)
    return bytes(block)


def _member_bytes(name: str, data: bytes, mtime: float) -> bytes:
    return _header(name, len(data), mtime, 0o644) + data + bytes(_padding(len(data)))


def _copy_range(source, out, offset: int) -> None:
    """Append source[offset:] to out in the kernel where possible (copy_file_range), else by blocks."""
    out.flush()
    remaining = os.fstat(source.fileno()).st_size - offset
    try:
        while remaining > 0:
            copied = os.copy_file_range(source.fileno(), out.fileno(), min(remaining, 1 << 30), offset)
            if not copied:
                break
            offset, remaining = offset + copied, remaining - copied
    except OSError:  # another filesystem or an old kernel: copy by blocks from where we are
        source.seek(offset)
        while block := source.read(CHUNK):
            out.write(block)


@functools.cache
def _sync_file_range():
    """libc's sync_file_range (Linux), or None where there is none."""
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def start_writeback(fd: int, offset: int, length: int) -> bool:
    """Ask the kernel to start writing a range of the file to disk, without waiting (SYNC_FILE_RANGE_WRITE):
    the disk works while we compress, and the closing fsync has little left to wait for. Only a hint:
    False where the system cannot, and durability still comes from the fsync."""
    function = _sync_file_range()
    return function is not None and function(fd, offset, length, 2) == 0


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def partial_path(path: Path) -> Path:
    """The hidden temporary name an archive has until it is complete."""
    return path.with_name(f".{path.name}.partial")


def _placeholder_manifest(header: dict, names: list[str], warnings: list[str]) -> dict:
    entries = [{"path": name, "size": 10**15, "sha256": "f" * 64, "mtime": 10**11} for name in names]
    return {**header, "format": FORMAT, "files": entries, "warnings": warnings,
            "totals": {"files": 10**9, "bytes": 10**15}}


def manifest_reserve(header: dict, names: list[str]) -> int:
    """Room at the start of the file for the compressed manifest member: zstd's worst case + slack.

    The placeholder manifest's length is found from two small ones (entries differ only in their path)
    rather than by writing out one entry per file."""
    one, two = (len(manifest_bytes(_placeholder_manifest(header, [""] * count, []))) for count in (1, 2))
    paths = sum(len(json.dumps(name)) - 2 for name in names)
    size = (one + (len(names) - 1) * (two - one) + paths if names else
            len(manifest_bytes(_placeholder_manifest(header, [], [])))) + 3 * BLOCK + WARNING_SLACK
    return size + (size >> 8) + 1024


class ArchiveWriter:
    """Stream files into a new archive; close() makes it appear, abort() leaves nothing.

    The names to be added are known up front, so the writer reserves room for the
    manifest at the start, streams the data after it, and at the end writes the
    manifest frame into the room, followed by a skippable frame over what is left.
    """

    def __init__(self, path: Path, header: dict, names: list[str], level: int = LEVEL, threads: int = -1):
        import zstandard

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial_path = partial_path(self.path)
        self.header = header
        self.files: list[dict] = []
        self.warnings: list[str] = []
        self.bytes_in = 0
        self._level = level
        self._reserve = manifest_reserve(header, names)
        self._raw = open(self.partial_path, "wb")
        self._raw.seek(self._reserve)
        self._sent = self._reserve  # where start_writeback has got to
        self._zst = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True).stream_writer(
            self._raw, closefd=False)
        self._buffer = memoryview(bytearray(CHUNK))

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, kind, value, trace) -> None:
        if kind is not None:
            self.abort()

    def add_file(self, name: str, source: Path) -> dict | None:
        """Add one regular file, hashing it while it streams; None when it vanished or is unreadable."""
        check_member_path(name)
        try:
            fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as failure:
            self.warnings.append(f"skipped {source}: {failure.strerror}")
            return None
        with open(fd, "rb", buffering=0) as handle:
            stat = os.fstat(fd)
            if not (stat.st_mode & 0o170000 == 0o100000):
                self.warnings.append(f"skipped {source}: not a regular file")
                return None
            size = stat.st_size
            self._zst.write(_header(name, size, stat.st_mtime, stat.st_mode))
            digest = hashlib.sha256()
            remaining, shrank = size, False
            while remaining:
                view = self._buffer[: min(CHUNK, remaining)]
                count = 0 if shrank else handle.readinto(view)
                if not count:  # the file shrank while we read it: pad with zeros as tar does, and say so
                    if not shrank:
                        self.warnings.append(f"{source} shrank by {remaining} bytes during the backup")
                        shrank = True
                    view = _ZEROS[: len(view)]
                    count = len(view)
                digest.update(view[:count])
                self._zst.write(view[:count])
                remaining -= count
            self._zst.write(bytes(_padding(size)))
        entry = {"path": name, "size": size, "sha256": digest.hexdigest(), "mtime": int(stat.st_mtime)}
        self.files.append(entry)
        self.bytes_in += size
        written = self._raw.tell()
        if written - self._sent >= WRITEBACK_STEP:
            start_writeback(self._raw.fileno(), self._sent, written - self._sent)
            self._sent = written
        return entry

    def close(self) -> dict:
        """End the data, put the manifest first, fsync, write the sidecar, rename into place."""
        import zstandard


        frames = zstandard.ZstdCompressor(level=self._level, write_checksum=True)
        self._zst.flush(zstandard.FLUSH_FRAME)
        self._zst.close()
        self._raw.write(frames.compress(bytes(2 * BLOCK)))
        manifest = {**self.header, "format": FORMAT, "files": self.files, "warnings": self.warnings,
                    "totals": {"files": len(self.files), "bytes": self.bytes_in}}
        data = manifest_bytes(manifest)
        first = frames.compress(_member_bytes(MANIFEST_MEMBER, data, time.time()))
        if len(first) + 8 <= self._reserve:
            self._raw.seek(0)
            self._raw.write(first + struct.pack("<II", SKIPPABLE_MAGIC, self._reserve - len(first) - 8))
        else:  # far more warnings than room: assemble a copy with the manifest in front
            self._raw = self._assemble(first)
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        atomic_write(sidecar_path(self.path), data)
        os.replace(self.partial_path, self.path)
        fsync_dir(self.path.parent)
        return manifest

    @property
    def _assembled_path(self) -> Path:
        return self.partial_path.with_name(f"{self.partial_path.name}.assemble")

    def _assemble(self, first: bytes):
        assembled = self._assembled_path
        out = open(assembled, "wb")
        out.write(first)
        self._raw.flush()
        _copy_range(self._raw, out, self._reserve)
        self._raw.close()
        os.replace(assembled, self.partial_path)
        return out

    def abort(self) -> None:
        for handle in (self._zst, self._raw):
            with contextlib.suppress(Exception):  # already failing; the partial file goes anyway
                handle.close()
        self.partial_path.unlink(missing_ok=True)
        self._assembled_path.unlink(missing_ok=True)


def sidecar_path(archive: Path) -> Path:
    return Path(f"{archive}.manifest.json")


# ---- reading --------------------------------------------------------------------------------


class _Inflater:
    """Decompressed bytes from a background thread, handed out as views without copies."""

    def __init__(self, path: Path, depth: int = 4):
        self._queue: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._chunk = memoryview(b"")
        self._eof = False
        self._file = open(path, "rb")
        self._thread = threading.Thread(target=self._pump, daemon=True, name="inflate")
        self._thread.start()

    def _pump(self) -> None:
        import zstandard

        try:
            reader = zstandard.ZstdDecompressor().stream_reader(self._file, read_size=CHUNK,
                                                                 read_across_frames=True)
            while not self._stop.is_set():
                data = reader.read(4 * CHUNK)
                self._put(data)
                if not data:
                    return
        except Exception as failure:  # noqa: BLE001 - handed to the reading thread
            self._put(failure)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _refill(self) -> bool:
        if self._eof:
            return False
        item = self._queue.get()
        if isinstance(item, Exception):
            self._eof = True
            raise ArchiveDamaged(f"cannot decompress: {item}", "the archive is damaged; use another backup")
        if not item:
            self._eof = True
            return False
        self._chunk = memoryview(item)
        return True

    def views(self, size: int) -> Iterator[memoryview]:
        """Exactly size bytes, as views into the decompressed chunks."""
        while size:
            if not self._chunk and not self._refill():
                raise ArchiveDamaged("the archive ends in the middle of a member",
                                     "it is truncated; use another backup")
            view = self._chunk[:size]
            self._chunk = self._chunk[len(view):]
            size -= len(view)
            yield view

    def read(self, size: int) -> bytes:
        return b"".join(bytes(view) for view in self.views(size))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._file.close()


def _parse_pax(data: bytes) -> dict:
    fields, position = {}, 0
    try:
        while position < len(data) and data[position:position + 1] != b"\0":
            space = data.index(b" ", position)
            length = int(data[position:space])
            key, _, value = data[space + 1:position + length - 1].partition(b"=")
            fields[key.decode("utf-8")] = value.decode("utf-8", "surrogateescape")
            position += length
    except ValueError as bad:
        raise ArchiveDamaged(f"bad pax header ({bad})", "the archive is damaged; use another backup") from None
    return fields


def _members(stream: _Inflater) -> Iterator[tarfile.TarInfo]:
    """Tar headers with pax and GNU long names applied; the caller consumes each member's data."""
    extra: dict = {}
    while True:
        block = stream.read(BLOCK)
        if block == _ZERO_BLOCK:
            return
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as bad:
            raise ArchiveDamaged(f"bad tar header ({bad})", "the archive is damaged; use another backup") from None
        if info.type in _META_TYPES:
            data = stream.read(info.size + _padding(info.size))[: info.size]
            if info.type == tarfile.XHDTYPE:
                extra.update(_parse_pax(data))
            elif info.type == tarfile.GNUTYPE_LONGNAME:
                extra["path"] = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
            elif info.type == tarfile.GNUTYPE_LONGLINK:
                extra["linkpath"] = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
            continue
        info.name = extra.get("path", info.name)
        info.linkname = extra.get("linkpath", info.linkname)
        if "size" in extra:
            info.size = int(extra["size"])
        extra = {}
        yield info


def _write_all(fd: int, views: list[memoryview]) -> None:
    """Write the views in order with as few system calls as the kernel allows (writev, no joining copy)."""
    while views:
        written = os.writev(fd, views[:_IOV_MAX])
        while views and written >= len(views[0]):
            written -= len(views[0])
            views = views[1:]
        if written:
            views = [views[0][written:], *views[1:]]


def check_padding(path: Path) -> None:
    """The skippable frame after the manifest holds only zeros: no byte of the file goes unchecked."""
    import zstandard

    inflate = zstandard.ZstdDecompressor().decompressobj()
    with open(path, "rb") as handle:
        try:
            while not inflate.eof:
                block = handle.read(1 << 16)
                if not block:
                    raise ArchiveDamaged("the archive ends inside its first frame", "use another backup")
                inflate.decompress(block)
        except zstandard.ZstdError as bad:
            raise ArchiveDamaged(f"cannot decompress: {bad}", "the archive is damaged; use another backup") from None
        rest = inflate.unused_data + handle.read(max(0, 8 - len(inflate.unused_data)))
        if len(rest) < 8 or struct.unpack("<I", rest[:4])[0] != SKIPPABLE_MAGIC:
            return  # no padding frame (an archive assembled in one piece)
        remaining = struct.unpack("<I", rest[4:8])[0]
        block = rest[8:8 + remaining]
        while not block.strip(b"\0"):
            remaining -= len(block)
            if remaining <= 0:
                return
            block = handle.read(min(CHUNK, remaining))
            if not block:
                break
        raise ArchiveDamaged("the padding after the manifest is not zeros (or is cut short)",
                             "the archive is damaged; use another backup")


def _open_archive(stream: _Inflater) -> tuple[Iterator[tarfile.TarInfo], dict]:
    members = _members(stream)
    first = next(members, None)
    if first is None or first.name != MANIFEST_MEMBER or not first.isreg() or first.size > 256 * CHUNK:
        raise ArchiveDamaged("the first member is not the manifest", "use an archive made by backup.py")
    data = stream.read(first.size + _padding(first.size))[: first.size]
    try:
        manifest = json.loads(data)
    except ValueError:
        raise ArchiveDamaged("the manifest is not valid JSON", "the archive is damaged; use another backup") from None
    return members, validate_manifest(manifest)


def read_manifest(path: Path) -> dict:
    """The manifest inside an archive (its first member), validated."""
    stream = _Inflater(path, depth=2)
    try:
        return _open_archive(stream)[1]
    finally:
        stream.close()


Sink = Callable[[str], "Path | None"]


class _Folders:
    """The folders this extraction made (or found): each is created once, not once per file in it."""

    def __init__(self):
        self._made: set[str] = set()

    def ensure_parent(self, target: Path) -> None:
        folder = os.path.dirname(target)
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)


def _open_target(target: Path, mode: int, folders: _Folders) -> int:
    """A new file for a member: no symlink followed, permission bits from the archive (owner rw at least)."""
    folders.ensure_parent(target)
    return os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, (mode & 0o777) | 0o600)


def _finish(fd: int, mtime: float) -> None:
    os.utime(fd, (mtime, mtime))
    os.close(fd)


def _write_file(target: Path, parts: list[memoryview], mode: int, mtime: float, folders: _Folders) -> None:
    fd = _open_target(target, mode, folders)
    try:
        _write_all(fd, parts)
    except BaseException:
        os.close(fd)
        raise
    _finish(fd, mtime)


class _Writers:
    """Write verified small files on threads of their own, at most `budget` bytes in flight.

    Copying into the page cache (and creating each file) is the slow part of a restore; on threads of
    their own, inflating, hashing and writing overlap (a three-stage pipeline), and two writers share
    that kernel time between two cores. A file is written from views of the decompressed stream, never
    joined into a copy. Leaving the block waits for every write, so the caller may remove what was
    written right after.
    """

    def __init__(self, threads: int = WRITERS, budget: int = 24 * CHUNK):
        from concurrent.futures import ThreadPoolExecutor

        self.folders = _Folders()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="restore-write")
        self._budget, self._in_flight = budget, 0
        self._room = threading.Condition()
        self._error: BaseException | None = None

    def __enter__(self) -> _Writers:
        return self

    def __exit__(self, kind, value, trace) -> None:
        self._pool.shutdown(wait=True)
        if kind is None:
            self.raise_error()

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, target: Path, parts: list[memoryview], size: int, mode: int, mtime: float) -> None:
        """Write a verified file from views of the decompressed stream (they stay valid: bytes never change)."""
        self.raise_error()
        with self._room:
            while self._in_flight and self._in_flight + size > self._budget:
                self._room.wait()
            self._in_flight += size
        self._pool.submit(self._write, target, parts, mode, mtime, size)

    def _write(self, target: Path, parts: list[memoryview], mode: int, mtime: float, size: int) -> None:
        try:
            if self._error is None:
                _write_file(target, parts, mode, mtime, self.folders)
        except BaseException as failure:  # noqa: BLE001 - handed to the reading thread
            self._error = self._error or failure
        finally:
            with self._room:
                self._in_flight -= size
                self._room.notify_all()


def scan(path: Path, sink: Sink | None = None, meter: Meter | None = None) -> dict:
    """Read every member and check it against the manifest; sink(name) names where to write it;
    meter (a terminal's progress bar) shows the bytes checked against the manifest's sizes.

    Raises ArchiveDamaged or UnsafeArchive at the first problem (or the OSError of a write);
    what was written by then is the caller's to remove (restore writes only into staging).
    """
    check_padding(path)
    stream = _Inflater(path)
    try:
        with _Writers() as writers:
            members, manifest = _open_archive(stream)
            expected = {entry["path"]: entry for entry in manifest["files"]}
            seen: set[str] = set()
            total = sum(int(entry.get("size") or 0) for entry in manifest["files"])
            bar = meter(total, f"verify {path.name}") if meter else contextlib.nullcontext(lambda count: None)
            with bar as advance:
                for info in members:
                    check_member_type(info)
                    check_member_path(info.name.rstrip("/") if info.isdir() else info.name)
                    if info.isdir():
                        continue
                    entry = expected.get(info.name)
                    if entry is None or info.name in seen:
                        raise ArchiveDamaged(f"member {info.name!r} is not in the manifest (or comes twice)",
                                             "the archive was altered; use another backup")
                    if info.size != entry["size"]:
                        raise ArchiveDamaged(f"{info.name}: size {info.size} differs from the manifest's "
                                             f"{entry['size']}", "the archive is damaged; use another backup")
                    _check_member(stream, info, entry, sink(info.name) if sink else None, writers)
                    seen.add(info.name)
                    advance(info.size)
            missing = expected.keys() - seen
            if missing:
                raise ArchiveDamaged(f"{len(missing)} files of the manifest are missing from the archive, such as "
                                     f"{sorted(missing)[0]!r}", "it is truncated or altered; use another backup")
        return manifest
    finally:
        stream.close()


def _check_member(stream: _Inflater, info: tarfile.TarInfo, entry: dict, target: Path | None,
                  writers: _Writers) -> None:
    """Hash a member against its entry; small ones are written after the check by the writers,
    big ones stream to their file while they are hashed."""
    digest = hashlib.sha256()
    pooled = target is not None and info.size <= POOLED_FILE
    parts: list = []
    fd = _open_target(target, info.mode, writers.folders) if target is not None and not pooled else None
    try:
        for view in stream.views(info.size):
            digest.update(view)
            if fd is not None:
                _write_all(fd, [view])
            elif pooled:
                parts.append(view)
        for _ in stream.views(_padding(info.size)):
            pass
        if digest.hexdigest() != entry["sha256"]:
            raise ArchiveDamaged(f"{info.name}: SHA-256 differs from the manifest",
                                 "the archive is damaged; use another backup")
    except BaseException:
        if fd is not None:
            os.close(fd)
        raise
    if fd is not None:
        _finish(fd, info.mtime)
    elif pooled:
        writers.submit(target, parts, info.size, info.mode, info.mtime)
