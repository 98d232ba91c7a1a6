"""Where archives live: the local backup folder and the S3 bucket, under the same keys.

Key: <kind>/<YYYY-MM-DD>/tdev-<kind>-<YYYYmmddTHHMMSSZ>.tar.zst (DESIGN §8), the manifest
beside it as <key>.manifest.json. The day folder is the local day the backup covers;
the stamp is when it was made (UTC), which is what restore selects on.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from lib import config, fsutil, paths, timeparse
from lib.adapters import aws
from lib.archives import KINDS, archive
from lib.errors import NotFound, ToolError

_KEY = re.compile(r"^(daily|full|history)/(\d{4}-\d{2}-\d{2})/tdev-(daily|full|history)-(\d{8}T\d{6}Z)\.tar\.zst$")
STAMP = "%Y%m%dT%H%M%SZ"
SIDECAR_SUFFIX = ".manifest.json"
RESTORABLE = ("daily", "full")  # the kinds restore.py --kind auto applies: they carry the whole store


@dataclass
class Backup:
    key: str
    kind: str
    day: date
    created: datetime
    path: Path | None = None  # the local copy, when there is one
    in_s3: bool = False
    size: int | None = None
    rows: int | None = None  # rows of history in the store it holds, once read from its manifest

    @property
    def sidecar_key(self) -> str:
        return f"{self.key}{SIDECAR_SUFFIX}"

    def row(self) -> dict:
        return {"key": self.key, "kind": self.kind, "day": self.day.isoformat(),
                "created_at": timeparse.iso(self.created), "local": str(self.path) if self.path else None,
                "s3": self.in_s3, "size": self.size}


def key_for(kind: str, day: date, created: datetime) -> str:
    return f"{kind}/{day.isoformat()}/tdev-{kind}-{created.astimezone(UTC).strftime(STAMP)}.tar.zst"


def parse_key(key: str) -> Backup | None:
    match = _KEY.match(key)
    if not match or match.group(1) != match.group(3):
        return None
    created = datetime.strptime(match.group(4), STAMP).replace(tzinfo=UTC)
    return Backup(key, match.group(1), date.fromisoformat(match.group(2)), created)


def local_dir() -> Path:
    return paths.backup_dir()


def list_local(directory: Path | None = None) -> list[Backup]:
    """Complete archives in the local folder (hidden .partial files are never listed)."""
    directory = directory or local_dir()
    found = []
    for path in directory.glob("*/*/tdev-*.tar.zst"):
        backup = parse_key(path.relative_to(directory).as_posix())
        if backup:
            backup.path, backup.size = path, path.stat().st_size
            found.append(backup)
    return sorted(found, key=lambda b: b.created)


@dataclass(frozen=True)
class Offsite:
    """Whether backups get their off-site copy: ready, off (not wanted) or unavailable (wanted, cannot be)."""

    state: str
    bucket: str | None
    reason: str

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def wanted(self) -> bool:
        return self.state != "off"


def offsite(enabled: bool = True) -> Offsite:
    """The off-site copy's state: off with --no-s3 or `aws.backup_bucket: null`, unavailable without credentials."""
    if not enabled:
        return Offsite("off", None, "--no-s3")
    bucket = config.offsite_bucket()
    if bucket is None:
        return Offsite("off", None, "settings aws.backup_bucket is null")
    if not aws.credentials_available():
        return Offsite("unavailable", bucket, f"no AWS credentials found for s3://{bucket}/ (set AWS_PROFILE, or "
                       "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
    return Offsite("ready", bucket, f"s3://{bucket}/")


def list_s3(bucket: str | None = None) -> list[Backup]:

    bucket = bucket or config.backup_bucket()
    found = []
    with aws.aws_errors(f"list s3://{bucket}/"):
        for kind in KINDS:
            for item in aws.paginate(aws.client("s3"), "list_objects_v2", "Contents", Bucket=bucket, Prefix=f"{kind}/"):
                backup = parse_key(item["Key"])
                if backup:
                    backup.in_s3, backup.size = True, item["Size"]
                    found.append(backup)
    return sorted(found, key=lambda b: b.created)


def list_all(s3: bool) -> list[Backup]:
    """Local and (when asked) S3 backups merged by key."""
    merged = {b.key: b for b in list_local()}
    for remote in list_s3() if s3 else []:
        if remote.key in merged:
            merged[remote.key].in_s3 = True
        else:
            merged[remote.key] = remote
    return sorted(merged.values(), key=lambda b: b.created)


def newest(backups: list[Backup], kinds=KINDS, until: datetime | None = None) -> Backup | None:
    candidates = [b for b in backups if b.kind in kinds and (until is None or b.created < until)]
    return max(candidates, key=lambda b: b.created, default=None)


def chain_for(backups: list[Backup], day: date, kind: str = "auto") -> list[Backup]:
    """What restore --date day applies, oldest first.

    auto: the newest daily or full backup made before the end of the day; a daily one is
    laid over the newest full backup made before it, so the artifacts come back too.
    """
    end = timeparse.day_bounds(day)[1]
    chosen = newest(backups, ("daily", "full") if kind == "auto" else (kind,), end)
    if chosen is None:
        return []
    if kind == "auto" and chosen.kind == "daily":
        base = newest(backups, ("full",), chosen.created)
        if base:
            return [base, chosen]
    return [chosen]


def upload(path: Path, key: str, meter: aws.Meter | None = None) -> dict:
    """The archive and its manifest to S3 (ChecksumAlgorithm=SHA256); meter shows the archive's bytes."""

    bucket = config.backup_bucket()
    result = aws.upload_file(path, bucket, key, meter)
    aws.upload_file(archive.sidecar_path(path), bucket, f"{key}{SIDECAR_SUFFIX}")
    return {"bucket": bucket, "key": key, "sha256": result["sha256"], "url": f"s3://{bucket}/{key}"}


def fetch(backup: Backup, meter: aws.Meter | None = None) -> Path:
    """A local file for the backup: the local copy, else a download (checksum verified) into the folder."""
    if backup.path and backup.path.exists():
        return backup.path

    target = local_dir() / backup.key
    target.parent.mkdir(parents=True, exist_ok=True)
    bucket = config.backup_bucket()
    sidecar = archive.sidecar_path(target)
    try:
        aws.download_file(bucket, backup.sidecar_key, sidecar)
    except aws.AWSNotFound:
        pass  # the manifest inside the archive is the one that counts
    try:
        aws.download_file(bucket, backup.key, target, meter)
    except BaseException:
        sidecar.unlink(missing_ok=True)  # no lone manifest for an archive that did not come
        raise
    backup.path = target
    return target


def read_manifest(backup: Backup) -> dict | None:
    """The manifest for a plan: the sidecar (local or S3), else the archive's first member."""
    if backup.path:
        sidecar = archive.sidecar_path(backup.path)
        if sidecar.exists():
            return archive.validate_manifest(json.loads(sidecar.read_text(encoding="utf-8")))
        return archive.read_manifest(backup.path)

    bucket = config.backup_bucket()
    try:
        with aws.aws_errors(f"read s3://{bucket}/{backup.sidecar_key}"):
            body = aws.client("s3").get_object(Bucket=bucket, Key=backup.sidecar_key)["Body"].read()
    except NotFound:
        return None
    return archive.validate_manifest(json.loads(body))


def history_rows(counts: dict) -> int:
    """Rows of history in a store's counts: meta rows (such as installed_at) are not history."""
    return sum(count for key, count in counts.items() if key != "meta")


def store_rows(backup: Backup) -> int:
    """Rows of history in the store the backup holds (0: no store, or an unreadable manifest); kept on it."""
    if backup.rows is None and not (backup.path or backup.in_s3):
        backup.rows = 0  # nowhere to read it from
    if backup.rows is None:
        try:
            store = (read_manifest(backup) or {}).get("store") or {}
        except (ToolError, ValueError, OSError):
            store = {}
        backup.rows = history_rows(store.get("counts") or {}) if store.get("member") else 0
    return backup.rows


def with_store(backups: list[Backup]) -> list[Backup]:
    """The daily and full backups whose store holds history, newest first."""
    return [b for b in sorted(backups, key=lambda b: b.created, reverse=True)
            if b.kind in RESTORABLE and store_rows(b) > 0]


def restore_command() -> str:
    """The restore.py line that brings back the newest local backup whose store holds history."""
    newest = next(iter(with_store(list_local())), None)
    if newest is None:
        return "python scripts/restore.py --date <day> --source s3 --confirm (no local backup holds the store)"
    return f"python scripts/restore.py --date {newest.day.isoformat()} --confirm ({newest.key} holds the store)"


def check_destination() -> None:
    """ToolError naming the backup folder and the fix when no backup can be written there."""
    folder = local_dir()
    if problem := fsutil.write_problem(folder):
        raise ToolError(f"cannot write backups to {folder}: {problem}", destination_fix(folder))


def destination_fix(folder: Path, failure: OSError | None = None) -> str:
    if failure is not None and failure.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"free space in {folder}, or point TDEV_BACKUP_DIR at a folder with room"
    return f"make {folder} a writable folder, or point TDEV_BACKUP_DIR at one"


# ---- retention ---------------------------------------------------------------------------------


def retention_plan(backups: list[Backup], keep_daily: int, keep_weekly: int,
                   keep_min: int = 0) -> tuple[list[Backup], list[Backup]]:
    """What to delete, and what the rules would delete but the store rule keeps.

    The rules keep the newest backup of each of the last N days (daily, history) and M ISO
    weeks (full), never fewer than one of a kind. The store rule then keeps the newest backup
    whose store holds history, and as many more such backups as make keep_min: backups made
    while the store was lost (or recreated empty) must never push out the last good one.
    """
    doomed = []
    rules = (("daily", keep_daily, lambda b: b.day), ("history", keep_daily, lambda b: b.day),
             ("full", keep_weekly, lambda b: b.day.isocalendar()[:2]))
    for kind, keep, bucket_of in rules:
        kept_buckets: list = []
        for backup in sorted((b for b in backups if b.kind == kind), key=lambda b: b.created, reverse=True):
            bucket = bucket_of(backup)
            if bucket not in kept_buckets and len(kept_buckets) < max(1, keep):
                kept_buckets.append(bucket)
            else:
                doomed.append(backup)
    doomed_keys = {b.key for b in doomed}
    good = with_store(backups)
    kept = sum(1 for b in good if b.key not in doomed_keys)
    rescued = []
    for index, backup in enumerate(good):
        if backup.key in doomed_keys and (index == 0 or kept < keep_min):
            doomed_keys.discard(backup.key)
            rescued.append(backup)
            kept += 1
    return [b for b in doomed if b.key in doomed_keys], rescued


def delete_local(backups: list[Backup]) -> None:
    for backup in backups:
        if backup.path:
            archive.sidecar_path(backup.path).unlink(missing_ok=True)
            backup.path.unlink(missing_ok=True)
            for folder in (backup.path.parent, backup.path.parent.parent):
                if folder != local_dir() and folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()


def delete_s3(backups: list[Backup]) -> None:

    bucket = config.backup_bucket()
    keys = [{"Key": key} for b in backups for key in (b.key, b.sidecar_key)]
    s3 = aws.client("s3")
    for start in range(0, len(keys), 1000):
        with aws.aws_errors(f"delete old backups from s3://{bucket}/"):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start:start + 1000], "Quiet": True})


def clean_stale(directory: Path | None = None) -> list[str]:
    """Remove what an interrupted backup left (hidden .partial files, work folders, lone manifests).

    Only call it while holding the backup lock: then nothing else is writing here.
    """
    directory = directory or local_dir()
    removed = []
    for leftover in [*directory.glob("*/*/.*.partial*"), *directory.glob(".work-*")]:
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink(missing_ok=True)
        removed.append(str(leftover))
    for sidecar in directory.glob(f"*/*/tdev-*.tar.zst{SIDECAR_SUFFIX}"):
        if not sidecar.with_name(sidecar.name.removesuffix(SIDECAR_SUFFIX)).exists():
            sidecar.unlink(missing_ok=True)
            removed.append(str(sidecar))
    return removed
