"""archive_logs.py: application logs past an age go to zstd objects in S3, then away.

Files of the log folder and of its subfolders (the crontab's cron/, what logrotate left)
keep their path under it: cron/backup.log-20240115 becomes logs/<day>/cron/backup.log-20240115.zst.
Each file is streamed through zstandard into a local copy under <backup dir>/logs/<day>/
(memory stays flat whatever the size), uploaded with a SHA-256 checksum S3 verifies,
checked against S3's checksum, and only then deleted. CloudWatch log groups of the
project that keep their events forever get the configured retention.
"""

from __future__ import annotations

import bisect
import contextlib
import os
from datetime import datetime, timedelta
from pathlib import Path

from lib import agents, config, paths, timeparse
from lib.adapters import aws
from lib.agents.ecs import EcsRuntime
from lib.backup.jobs import Progress
from lib.errors import ExternalError, ToolError

#: the only retention periods CloudWatch Logs accepts
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)
CHUNK = 1 << 20
FILE_COLUMNS = [("file", "FILE"), ("size", "SIZE"), ("compressed", "COMPRESSED"), ("key", "S3 KEY"),
                ("result", "RESULT")]
GROUP_COLUMNS = [("log_group", "LOG GROUP"), ("retention_before", "RETENTION BEFORE"),
                 ("retention_after", "RETENTION AFTER"), ("result", "RESULT")]


# ---- files -------------------------------------------------------------------------------------

def candidates(older_than: timedelta, now: datetime | None = None) -> list[Path]:
    """Regular files in the log folder or below whose last change is older than the age (hidden ones
    and those in hidden folders are not logs)."""
    folder = paths.log_dir()
    if not folder.is_dir():
        return []
    cutoff = (now or timeparse.utcnow()).timestamp() - older_than.total_seconds()
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not p.is_symlink() and p.stat().st_mtime < cutoff
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def day_of(path: Path) -> str:
    """The file's last-change day (local calendar), the folder it is archived under."""
    return datetime.fromtimestamp(path.stat().st_mtime).astimezone().strftime("%Y-%m-%d")


def compress(source: Path, target: Path, level: int = 6) -> int:
    """Stream source through zstd into target (via a .part name); returns the compressed size."""
    import zstandard

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
    try:
        with open(source, "rb") as src, open(partial, "wb") as dst:
            compressor.copy_stream(src, dst, size=source.stat().st_size, read_size=CHUNK, write_size=CHUNK)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target.stat().st_size


def archive_file(path: Path, bucket: str, dry_run: bool) -> dict:
    day = day_of(path)
    name = path.relative_to(paths.log_dir()).as_posix()
    key = f"logs/{day}/{name}.zst"
    row = {"file": name, "size": path.stat().st_size, "compressed": None, "key": f"s3://{bucket}/{key}",
           "result": "would archive", "ok": True}
    if dry_run:
        return row
    local = paths.backup_dir() / "logs" / day / f"{name}.zst"
    try:
        row["compressed"] = compress(path, local)
        sent = aws.upload_file(local, bucket, key)
        remote = aws.remote_sha256(bucket, key)
        if remote != sent["sha256"]:
            raise ExternalError(f"{key}: S3 holds checksum {str(remote)[:12]}…, the archive {sent['sha256'][:12]}…",
                                "the original was kept; run again")
        path.unlink()
        row["result"] = "archived"
    except ToolError as failure:
        row.update(result=f"failed: {failure}", ok=False)
    return row


def ensure_bucket(bucket: str) -> None:
    """Write commands create what they need: the backup bucket if it is not there."""
    s3 = aws.client("s3")
    try:
        with aws.aws_errors(f"check the bucket {bucket}"):
            s3.head_bucket(Bucket=bucket)
    except aws.AWSNotFound:
        params = {"Bucket": bucket}
        if aws.region() != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": aws.region()}
        with aws.aws_errors(f"create the bucket {bucket}"):
            s3.create_bucket(**params)


def archive(older_than: timedelta, dry_run: bool, progress: Progress | None = None) -> list[dict]:
    """Archive every log file older than the age; progress is the caller's display, if any."""
    files = candidates(older_than)
    bucket = config.backup_bucket()
    if files and not dry_run:
        ensure_bucket(bucket)
    rows = []
    with progress(files, "archiving logs") if progress else contextlib.nullcontext(files) as items:
        for path in items:
            rows.append(archive_file(path, bucket, dry_run))
    return rows


# ---- CloudWatch log groups -----------------------------------------------------------------------

def retention_days() -> int:
    """The configured retention, rounded up to a period CloudWatch accepts."""
    wanted = config.settings()["retention"]["log_retention_days"]
    return RETENTION_DAYS[min(bisect.bisect_left(RETENTION_DAYS, wanted), len(RETENTION_DAYS) - 1)]


def _ecs_log_groups(agent: dict) -> set[str]:

    task_definition = EcsRuntime(agent).task_definition_arn()
    with aws.aws_errors(f"read the task definition of {agent['name']}"):
        containers = aws.client("ecs").describe_task_definition(taskDefinition=task_definition)[
            "taskDefinition"]["containerDefinitions"]
    return {c["logConfiguration"]["options"]["awslogs-group"] for c in containers
            if c.get("logConfiguration", {}).get("options", {}).get("awslogs-group")}


def project_log_groups() -> list[dict]:
    """The project's log groups: /aws/lambda/<function> of Lambda agents, the awslogs groups of ECS
    agents' task definitions, and every group under settings aws.log_group_prefix."""
    exact: set[str] = set()
    for agent in agents.registry():
        if agent["runtime"] == "lambda":
            exact.add(f"/aws/lambda/{agent.get('function_name') or agent['name']}")
        elif agent["runtime"] == "ecs":
            exact |= _ecs_log_groups(agent)
    logs = aws.client("logs")
    found: dict[str, dict] = {}
    prefixes = [(name, True) for name in sorted(exact)] + [(config.settings()["aws"]["log_group_prefix"], False)]
    with aws.aws_errors("list the CloudWatch log groups"):
        for prefix, must_equal in prefixes:
            for group in aws.paginate(logs, "describe_log_groups", "logGroups", logGroupNamePrefix=prefix):
                if not must_equal or group["logGroupName"] == prefix:
                    found[group["logGroupName"]] = group
    return [found[name] for name in sorted(found)]


def set_retention(dry_run: bool) -> list[dict]:
    """Give every project log group without retention the configured one."""
    days = retention_days()
    rows = []
    for group in project_log_groups():
        before = group.get("retentionInDays")
        row = {"log_group": group["logGroupName"], "retention_before": before or "never expire",
               "retention_after": before, "result": "kept"}
        if before is None:
            row.update(retention_after=days, result="would set" if dry_run else "set")
            if not dry_run:
                apply_retention(group["logGroupName"], days)
        rows.append(row)
    return rows


def apply_retention(log_group: str, days: int) -> None:
    with aws.aws_errors(f"set the retention of {log_group}"):
        aws.client("logs").put_retention_policy(logGroupName=log_group, retentionInDays=days)
