"""Backups to S3 and restores from it, and the DynamoDB store, against moto (subprocesses)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import pty
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
from backup_helpers import archives, digest_tree, flip_byte, ok, seed, store_records

from lib import health
from tests.conftest import ROOT

BUCKET = "t-developer-backups"
MARCH_1 = datetime(2030, 3, 1, 2, 0, tzinfo=UTC)


def s3():
    return boto3.client("s3")


def keys() -> list[str]:
    return sorted(item["Key"] for item in s3().list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_backup_uploads_archive_and_manifest_with_a_sha256_checksum(tdev, aws):
    s3().create_bucket(Bucket=BUCKET)
    seed(tdev)
    result = json.loads(ok(tdev.run("backup.py", "--daily", "--json")))
    assert result["s3"]["status"] == "uploaded"
    (local,) = archives(tdev.backup_dir)
    key = local.relative_to(tdev.backup_dir).as_posix()
    assert keys() == [key, f"{key}.manifest.json"]
    head = s3().head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    digest = hashlib.sha256(local.read_bytes()).digest()
    assert base64.b64decode(head["ChecksumSHA256"]) == digest and head["Metadata"]["sha256"] == digest.hex()


def test_a_missing_bucket_fails_the_backup_but_keeps_the_local_archive(tdev, aws):
    seed(tdev)
    done = tdev.run("backup.py", "--full", "--json")
    result = json.loads(ok(done, 1))
    assert result["s3"]["status"] == "failed" and "NoSuchBucket" in result["s3"]["error"] or \
        "not found" in result["s3"]["error"]
    assert len(archives(tdev.backup_dir)) == 1


def test_restore_falls_back_to_s3_downloads_verifies_and_restores(tdev, aws):
    s3().create_bucket(Bucket=BUCKET)
    seed(tdev)
    ok(tdev.run("backup.py", "--full"))
    before, records = digest_tree(tdev.history, ("locks", "audit.log", "state.db", "worktrees", "tmp")), store_records()
    shutil.rmtree(tdev.backup_dir)
    shutil.rmtree(tdev.history)
    planned = tdev.run("restore.py", "--date", "today")
    plan = ok(planned, 1)  # no terminal, no --confirm: the plan, then a non-zero exit
    assert planned.stderr.endswith("error: nothing restored: add --confirm\n")
    assert "from s3" in plan
    ok(tdev.run("restore.py", "--date", "today", "--confirm"))
    assert digest_tree(tdev.history, ("locks", "audit.log", "state.db", "restore.json")) == before
    assert store_records() == records
    assert len(archives(tdev.backup_dir)) == 1  # the downloaded copy is kept locally
    ok(tdev.run("verify_restore.py"))
    ok(tdev.run("restore.py", "--date", "today", "--confirm", "--source", "s3"))


def on_a_terminal(tdev, script: str, *args: str) -> tuple[int, str, str]:
    """Run a script with stdin and stderr on a pseudo-terminal, stdout to a file: an operator at a
    terminal, as far as progress bars and confirmations go. Returns (exit code, stdout, terminal)."""
    controller, terminal = pty.openpty()
    with open(tdev.base / "stdout", "w+") as out, subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / script), *args], stdin=terminal, stderr=terminal, stdout=out,
            env=tdev.env, cwd=ROOT) as process:
        os.close(terminal)
        shown = b""
        with contextlib.suppress(OSError):  # EIO once the script has closed the terminal
            while chunk := os.read(controller, 65536):
                shown += chunk
        process.wait(timeout=120)
        out.seek(0)
        printed = out.read()
    os.close(controller)
    return process.returncode, printed, shown.decode(errors="replace")


def test_backup_and_restore_on_a_terminal_show_their_progress(tdev, aws):
    s3().create_bucket(Bucket=BUCKET)
    seed(tdev, big_bytes=4 << 20)
    code, out, shown = on_a_terminal(tdev, "backup.py", "--full")
    assert code == 0 and "backup full" in shown and "upload full/" in shown and "100%" in shown
    assert out == ""  # stdout is a file: the report stays quiet, the terminal still sees the progress
    shutil.rmtree(tdev.backup_dir)
    code, out, shown = on_a_terminal(tdev, "restore.py", "--date", "today")
    assert code == 0 and "run again with --confirm" in out and "error" not in shown  # a person reads the plan
    code, out, shown = on_a_terminal(tdev, "restore.py", "--date", "today", "--confirm")
    assert code == 0, shown
    assert "download full/" in shown and "verify tdev-full-" in shown and "100%" in shown
    assert "verified and restored" in out


def test_an_s3_object_whose_checksum_does_not_match_is_refused(tdev, aws):
    s3().create_bucket(Bucket=BUCKET)
    seed(tdev)
    ok(tdev.run("backup.py", "--full"))
    (local,) = archives(tdev.backup_dir)
    key = local.relative_to(tdev.backup_dir).as_posix()
    genuine = local.read_bytes()
    tampered = genuine[:1000] + bytes([genuine[1000] ^ 1]) + genuine[1001:]
    s3().put_object(Bucket=BUCKET, Key=key, Body=tampered, Metadata={"sha256": hashlib.sha256(genuine).hexdigest()})
    shutil.rmtree(tdev.backup_dir)
    before = digest_tree(tdev.base)
    done = tdev.run("restore.py", "--date", "today", "--confirm", "--source", "s3")
    assert done.returncode == 1 and "checksum mismatch" in done.stderr
    assert digest_tree(tdev.base, ("locks", "audit.log", "backups")) == \
        {k: v for k, v in before.items() if not k.startswith("backups/")}
    assert archives(tdev.backup_dir) == [] and not list(tdev.backup_dir.rglob("*.tar.zst*"))


def test_retention_prunes_old_backups_in_s3_too(tdev, aws):
    s3().create_bucket(Bucket=BUCKET)
    seed(tdev)
    settings = (tdev.config_dir / "settings.yaml").read_text().replace("keep_daily: 7", "keep_daily: 1")
    tdev.write_config("settings", settings)
    old = "daily/2024-01-10/tdev-daily-20240110T020000Z.tar.zst"
    for key in (old, f"{old}.manifest.json"):
        s3().put_object(Bucket=BUCKET, Key=key, Body=b"old")
    preview = json.loads(ok(tdev.run("backup.py", "--daily", "--dry-run", "--json")))
    assert preview["retention"]["s3"] == [old] and old in keys()
    ok(tdev.run("backup.py", "--daily"))
    assert old not in keys() and len(keys()) == 2


def test_dynamodb_store_is_exported_item_by_item_and_restored(tdev, aws, monkeypatch):
    monkeypatch.setenv("TDEV_STATE_BACKEND", "dynamodb")
    tdev.env["TDEV_STATE_BACKEND"] = "dynamodb"
    ids = seed(tdev)
    result = json.loads(ok(tdev.run("backup.py", "--full", "--no-s3", "--json")))
    assert result["store"]["mode"] == "records" and result["store"]["counts"]["evolutions"] == 2
    records = store_records()
    from lib.store import open_store

    store = open_store()
    store.update_evolution(ids["old"], {"status": "failed", "error": "changed after the backup"})
    done = json.loads(ok(tdev.run("restore.py", "--date", "today", "--confirm", "--json")))
    assert done["imported_records"] == len(records)
    assert store.get_evolution(ids["old"])["status"] == "succeeded"
    assert store_records() == records
    aside = tdev.base / done["aside"]["history"]["aside"].rsplit("/", 1)[-1] / "store-records.jsonl"
    assert "changed after the backup" in aside.read_text()
    assert "OK" in ok(tdev.run("verify_restore.py")).splitlines()[0]


# ---- the off-site copy: wanted unless the installation says otherwise ------------------------------------

def settings_bucket(tdev, value: str) -> None:
    text = (tdev.config_dir / "settings.yaml").read_text()
    tdev.write_config("settings", text.replace("backup_bucket: t-developer-backups", f"backup_bucket: {value}"))


def test_an_off_site_copy_that_cannot_be_made_fails_the_backup_and_keeps_the_local_one(tdev):
    seed(tdev)
    done = tdev.run("backup.py", "--daily", "--json")  # no AWS credentials on this machine
    result = json.loads(ok(done, 1))
    (local,) = archives(tdev.backup_dir)
    assert result["s3"]["status"] == "skipped" and result["archive"] == str(local)
    assert done.stderr.startswith("error: the off-site copy cannot be made: no AWS credentials found for "
                                  "s3://t-developer-backups/") and len(done.stderr.strip().splitlines()) == 1
    assert f"the local archive is kept: {local}" in done.stderr and "aws.backup_bucket: null" in done.stderr
    audit = json.loads((tdev.history / "audit.log").read_text().splitlines()[-1])
    assert (audit["result"], audit["s3"]) == ("failed", "skipped")
    checks = {c["name"]: c for c in json.loads(tdev.run("health_check.py", "--json").stdout)["checks"]}
    assert checks["backup_age"]["status"] == "warning"
    assert "off-site copies cannot be checked: no AWS credentials" in checks["backup_age"]["summary"]

    one_run = tdev.run("backup.py", "--full", "--no-s3", "--verbose")
    assert one_run.returncode == 0 and "note: no off-site copy (--no-s3)" in one_run.stderr
    settings_bucket(tdev, "null")  # this installation wants none
    declared = tdev.run("backup.py", "--daily", "--json")
    assert json.loads(ok(declared))["s3"] == {"status": "disabled",
                                              "note": "no off-site copy (settings aws.backup_bucket is null)"}
    assert len(archives(tdev.backup_dir)) == 3


def test_the_bucket_comes_from_settings_and_the_environment_overrides_it(tdev, aws):
    for bucket in ("settings-bucket", "env-bucket"):
        s3().create_bucket(Bucket=bucket)
    settings_bucket(tdev, "settings-bucket")
    seed(tdev)
    first = json.loads(ok(tdev.run("backup.py", "--daily", "--json")))
    assert first["s3"]["url"] == f"s3://settings-bucket/{first['key']}"
    tdev.pin_clock(datetime.now(UTC) + timedelta(minutes=1))
    second = json.loads(ok(tdev.run("backup.py", "--full", "--json", env={"TDEV_BACKUP_BUCKET": "env-bucket"})))
    assert second["s3"]["url"] == f"s3://env-bucket/{second['key']}"
    assert [o["Key"] for o in s3().list_objects_v2(Bucket="env-bucket")["Contents"]] == \
        [second["key"], f"{second['key']}.manifest.json"]


def backup_age() -> tuple[str, str]:
    from lib import config

    config.settings.cache_clear()
    health.load_all()
    (result,) = health.run([health.REGISTRY["backup_age"]])
    return result.status, result.summary


def test_backup_age_looks_at_the_newest_off_site_copy_too(tdev, aws, utc):
    s3().create_bucket(Bucket=BUCKET)
    seed(tdev)
    tdev.pin_clock(MARCH_1)
    made = json.loads(ok(tdev.run("backup.py", "--daily", "--json")))
    assert backup_age() == ("ok", f"newest daily backup is 0.0 h old ({made['key']}); off-site: newest daily "
                                  f"backup is 0.0 h old ({made['key']})")
    tdev.pin_clock(MARCH_1 + timedelta(hours=30))
    ok(tdev.run("backup.py", "--daily", "--no-s3"))  # the nightly copy stopped reaching S3
    status, summary = backup_age()
    assert status == "warning" and f"off-site: newest daily backup is 30.0 h old ({made['key']})" in summary
    tdev.pin_clock(MARCH_1 + timedelta(hours=51))
    status, summary = backup_age()
    assert status == "critical" and "off-site: newest daily backup is 51.0 h old" in summary  # local: 21 h


def test_dr_drill_restores_the_local_and_the_off_site_copy(tdev, aws, utc):
    s3().create_bucket(Bucket=BUCKET)
    seed(tdev)
    tdev.pin_clock(MARCH_1)
    made = json.loads(ok(tdev.run("backup.py", "--full", "--json")))
    before = digest_tree(tdev.base, ignore=())
    tdev.pin_clock(MARCH_1 + timedelta(hours=1))
    report = json.loads(ok(tdev.run("dr_test.py", "--simulate", "--json")))
    steps = {step["name"]: step for step in report["steps"]}
    assert list(steps) == ["local pick", "local restore", "local verify", "s3 pick", "s3 restore", "s3 verify"]
    assert report["status"] == "passed" and report["rpo_s"] == 3600
    assert steps["s3 pick"]["detail"] == f"{made['key']} is 1.0 h old (limit 26.0 h)"
    assert "checksums ok" in steps["s3 verify"]["detail"] and "rows ok: 2 evolutions" in steps["s3 verify"]["detail"]
    assert digest_tree(tdev.base, ignore=()) == before  # the download went to the scratch folder

    local = Path(made["archive"])
    tampered = local.with_name("tampered")
    shutil.copy(local, tampered)
    flip_byte(tampered, tampered.stat().st_size // 2)
    s3().put_object(Bucket=BUCKET, Key=made["key"], Body=tampered.read_bytes())
    report = json.loads(ok(tdev.run("dr_test.py", "--simulate", "--json"), 1))
    steps = {step["name"]: step for step in report["steps"]}
    assert steps["local verify"]["status"] == "ok" and steps["s3 restore"]["status"] == "failed"
    assert report["status"] == "failed"
