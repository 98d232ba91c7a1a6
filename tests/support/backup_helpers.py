"""Helpers for the backup tests: seed an installation, fingerprint folders, craft archives."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from evolution_seed import add_evolution, failed_evolution

from lib import paths
from lib.archives import archive
from lib.store import open_store

LAYOUT = r"^(daily|full|history)/\d{4}-\d{2}-\d{2}/tdev-\1-\d{8}T\d{6}Z\.tar\.zst$"


def seed(tdev, big_bytes: int = 0) -> dict:
    """A lived-in installation: today's failed evolution with tasks, spans, artifacts and logs,
    an evolution from three days ago, an audit log, app logs, an MCP config."""
    store = open_store(create=True)
    today = failed_evolution(store)
    old = add_evolution(store, started=datetime.now(UTC) - timedelta(days=3))
    store.set_meta("agents-capacity", {"research-agent": 2})
    store.close()
    paths.current_log().write_text("2024-01-15T10:00:00Z INFO evolution started\n")
    paths.audit_log().write_text('{"result": "ok"}\n')
    paths.evolution_dir(old["id"]).mkdir(parents=True, exist_ok=True)
    (paths.evolution_dir(old["id"]) / "report.json").write_text(json.dumps({"old": True}))
    for skipped in ("worktrees/evo-x/file.py", "tmp/scratch.txt"):
        (tdev.history / skipped).parent.mkdir(parents=True, exist_ok=True)
        (tdev.history / skipped).write_text("not backed up\n")
    tdev.log_dir.mkdir(parents=True, exist_ok=True)
    (tdev.log_dir / "runner.log").write_text("app log line\n")
    tdev.mcp_config.parent.mkdir(parents=True, exist_ok=True)
    tdev.mcp_config.write_text(json.dumps({"mcpServers": {"time": {"command": "mcp-server-time"}}}))
    if big_bytes:
        (paths.evolution_dir(today["evolution"]["id"]) / "big.bin").write_bytes(b"0123456789abcdef" * (big_bytes // 16))
    return {"today": today["evolution"]["id"], "old": old["id"], "task": today["task"]["id"]}


def local_only(tdev) -> None:
    """The installation wants no off-site copy (settings aws.backup_bucket: null): its backups stay local."""
    from lib import config

    settings = tdev.config_dir / "settings.yaml"
    settings.write_text(settings.read_text().replace("backup_bucket: t-developer-backups", "backup_bucket: null"))
    config.settings.cache_clear()


def digest_tree(folder: Path, ignore: tuple = ("locks", "audit.log")) -> dict:
    """relative path -> SHA-256 of every file under folder, but for paths with a part in ignore
    (lock files and the audit log change with every command)."""
    found = {}
    for path in sorted(folder.rglob("*")) if folder.exists() else []:
        relative = path.relative_to(folder)
        if path.is_file() and not set(relative.parts) & set(ignore):
            found[relative.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def store_records() -> list:
    """Every record of the store (its logical content; the file's bytes change when SQLite checkpoints)."""
    store = open_store()
    try:
        return sorted(json.dumps(item, sort_keys=True, default=str) for item in store.export_records())
    finally:
        store.close()


def archives(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/*/tdev-*.tar.zst"))


def ok(done, code: int = 0) -> str:
    assert done.returncode == code, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done.stdout


def craft(path: Path, manifest_files: list[dict], members: list[tuple[tarfile.TarInfo, bytes]],
          kind: str = "full") -> Path:
    """An archive written by tarfile (not by our writer): for hostile and odd inputs."""
    import zstandard

    manifest = {"format": archive.FORMAT, "kind": kind, "files": manifest_files, "roots": {},
                "store": {"backend": "sqlite", "member": None, "counts": {}}, "created_at": "2024-01-15T02:00:00+00:00"}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo(archive.MANIFEST_MEMBER)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for info, content in members:
            info.size = len(content) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(content) if info.isreg() else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(zstandard.ZstdCompressor().compress(buffer.getvalue()))
    return path


def regular(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def link(name: str, target: str, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = (tarfile.LNKTYPE if hard else tarfile.SYMTYPE), target
    return info


def entry(name: str, content: bytes) -> dict:
    return {"path": name, "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
