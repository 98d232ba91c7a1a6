"""End to end: archive_logs.py against moto S3 and CloudWatch Logs, with real zstd files."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from datetime import datetime

import zstandard
from aws_helpers import client, make_function, make_service, registry

from lib.backup import log_archive

DAY = 86400


def old_file(folder, name: str, text: str, age_days: float):
    path = folder / name
    path.write_text(text)
    moment = time.time() - age_days * DAY
    os.utime(path, (moment, moment))
    return path, datetime.fromtimestamp(moment).astimezone().strftime("%Y-%m-%d")


def test_archive_uploads_verifies_removes_and_sets_retention(tdev, aws, monkeypatch):
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")
    tdev.log_dir.mkdir()
    body = "".join(f"2024-01-01 INFO line {i} of the application log\n" for i in range(5000))
    old, day = old_file(tdev.log_dir, "app.log.1", body, 40)
    recent, _ = old_file(tdev.log_dir, "app.log", "fresh\n", 2)
    make_function("research-agent")
    make_service("planner-agent", desired=1)
    registry(tdev, [
        {"name": "research-agent", "phase": "research", "runtime": "lambda"},
        {"name": "planner-agent", "phase": "plan", "runtime": "ecs", "service": "planner-agent"},
    ])
    logs = client("logs")
    for group in ("/aws/lambda/research-agent", "/aws/lambda/research-agent-other", "/ecs/planner-agent",
                  "/t-developer/runner", "/unrelated"):
        logs.create_log_group(logGroupName=group)
    logs.put_retention_policy(logGroupName="/t-developer/runner", retentionInDays=7)

    result = tdev.run("archive_logs.py", "--older-than", "30d", "--verbose")
    assert result.returncode == 0, result.stderr
    assert "app.log.1" in result.stdout and "archived" in result.stdout
    assert not old.exists() and recent.exists()

    key = f"logs/{day}/app.log.1.zst"
    head = client("s3").head_object(Bucket="t-developer-backups", Key=key, ChecksumMode="ENABLED")
    local = tdev.backup_dir / "logs" / day / "app.log.1.zst"
    digest = hashlib.sha256(local.read_bytes()).digest()
    assert head["ChecksumSHA256"] == base64.b64encode(digest).decode()
    obj = client("s3").get_object(Bucket="t-developer-backups", Key=key)["Body"].read()
    assert zstandard.ZstdDecompressor().decompressobj().decompress(obj).decode() == body

    retention = {g["logGroupName"]: g.get("retentionInDays") for g in logs.describe_log_groups()["logGroups"]}
    assert retention == {"/aws/lambda/research-agent": 30, "/aws/lambda/research-agent-other": None,
                         "/ecs/planner-agent": 30, "/t-developer/runner": 7, "/unrelated": None}
    audit = json.loads((tdev.history / "audit.log").read_text().splitlines()[-1])
    assert audit["result"] == "archived" and audit["files"] == 1

    again = tdev.run("archive_logs.py", "--older-than", "30d", "--json")
    document = json.loads(again.stdout)
    assert document["files"] == [] and {g["result"] for g in document["log_groups"]} == {"kept"}


def test_subfolders_keep_their_path_hidden_ones_are_skipped_and_cron_hears_nothing(tdev, aws):
    cron = tdev.log_dir / "cron"
    (tdev.log_dir / ".cache").mkdir(parents=True)
    cron.mkdir()
    rotated, day = old_file(cron, "backup.log-20240101", "rotated by logrotate\n", 40)
    live, _ = old_file(cron, "backup.log", "today's run\n", 0)
    hidden, _ = old_file(tdev.log_dir / ".cache", "state", "not a log\n", 40)
    result = tdev.run("archive_logs.py", "--older-than", "30d")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not rotated.exists() and live.exists() and hidden.exists()
    key = f"logs/{day}/cron/backup.log-20240101.zst"
    body = client("s3").get_object(Bucket="t-developer-backups", Key=key)["Body"].read()
    assert zstandard.ZstdDecompressor().decompressobj().decompress(body) == b"rotated by logrotate\n"
    assert (tdev.backup_dir / "logs" / day / "cron" / "backup.log-20240101.zst").is_file()


def test_dry_run_keeps_files(tdev, aws):
    tdev.log_dir.mkdir()
    path, _ = old_file(tdev.log_dir, "old.log", "x\n", 31)
    result = tdev.run("archive_logs.py", "--older-than", "30d", "--dry-run")
    assert result.returncode == 0 and "would archive" in result.stdout
    assert path.exists()
    assert not any(b["Name"] == "t-developer-backups" for b in client("s3").list_buckets()["Buckets"])


def test_bad_age_and_lock(tdev, aws):
    assert tdev.run("archive_logs.py", "--older-than", "soon").returncode == 2
    import fcntl

    lock_path = tdev.history / "locks" / "archive_logs.lock"
    lock_path.parent.mkdir(parents=True)
    with open(lock_path, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = tdev.run("archive_logs.py", "--older-than", "30d")
    assert result.returncode == 1 and "archive_logs is already running" in result.stderr


def test_retention_rounds_up_to_an_accepted_period(tdev):
    tdev.write_config("settings", "retention:\n  log_retention_days: 45\n")
    from lib import config

    config.settings.cache_clear()
    assert log_archive.retention_days() == 60
