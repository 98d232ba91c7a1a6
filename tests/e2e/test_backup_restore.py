"""backup.py, backup_history.py, restore.py, verify_restore.py end to end (local folder, subprocesses)."""

from __future__ import annotations

import json
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from backup_helpers import (
    LAYOUT,
    archives,
    craft,
    digest_tree,
    entry,
    flip_byte,
    local_only,
    ok,
    regular,
    seed,
    store_records,
)

from lib import locks
from lib.archives import archive
from lib.store import open_store
from lib.store.sqlite import SQLiteStore

ROOT_SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
MARCH_1 = datetime(2030, 3, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_offsite_copy(tdev):
    """These installations keep their backups local (off-site copies: test_backup_s3.py)."""
    local_only(tdev)


def manifest_of(path) -> dict:
    return json.loads(archive.sidecar_path(path).read_text())


def test_daily_and_full_backups_follow_the_layout_and_hold_what_they_should(tdev):
    ids = seed(tdev)
    out = ok(tdev.run("backup.py", "--daily", "--verbose"))
    assert "note: no off-site copy (settings aws.backup_bucket is null)" in tdev.run("backup.py", "--full",
                                                                                     "--verbose").stderr
    assert "archive" in out and "retention" in out
    daily, full = sorted(archives(tdev.backup_dir), key=lambda p: p.parts[-3])
    for path in (daily, full):
        assert re.match(LAYOUT, path.relative_to(tdev.backup_dir).as_posix())
        assert archive.read_manifest(path) == manifest_of(path)
    daily_files = {e["path"] for e in manifest_of(daily)["files"]}
    full_manifest = manifest_of(full)
    full_files = {e["path"] for e in full_manifest["files"]}
    assert {"history/state.db", "history/current.log", "logs/runner.log", "config/settings.yaml"} <= daily_files
    assert f"history/{ids['today']}/evolution.log" in daily_files
    assert not any("/tasks/" in name for name in daily_files)  # artifacts wait for the full backup
    assert f"history/{ids['old']}/report.json" in full_files and "history/audit.log" in full_files
    assert "mcp/claude.mcp.json" in full_files and f"history/{ids['today']}/tasks/{ids['task']}.json" in full_files
    assert not any(name.startswith(("history/worktrees/", "history/tmp/", "history/locks/")) for name in full_files)
    assert full_manifest["store"]["counts"]["evolutions"] == 2 and full_manifest["store"]["counts"]["spans"] == 5
    assert full_manifest["kind"] == "full" and full_manifest["tool_version"] and full_manifest["host"]
    assert all(len(e["sha256"]) == 64 and e["size"] >= 0 for e in full_manifest["files"])
    audit = [json.loads(line) for line in (tdev.history / "audit.log").read_text().splitlines()[1:]]
    assert [a["kind"] for a in audit] == ["daily", "full"] and all(a["result"] == "ok" for a in audit)


def test_backup_needs_a_kind_and_dry_run_writes_nothing(tdev):
    seed(tdev)
    assert tdev.run("backup.py").returncode == 2
    out = ok(tdev.run("backup.py", "--full", "--dry-run", "--json"))
    assert json.loads(out)["dry_run"] is True and json.loads(out)["files"] > 5
    assert not tdev.backup_dir.exists() or archives(tdev.backup_dir) == []
    ok(tdev.run("backup.py", "--daily", env={"EVOLUTION_DRY_RUN": "true"}))
    assert not tdev.backup_dir.exists() or archives(tdev.backup_dir) == []


def test_a_second_backup_while_one_runs_exits_with_a_clear_message(tdev):
    seed(tdev)
    import fcntl

    lock = locks.backup_lock_path()  # beside the history: the folder a restore swaps
    with open(lock, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        done = tdev.run("backup.py", "--daily")
    assert done.returncode == 1 and "already running" in done.stderr


def test_backup_history_takes_that_days_evolutions_tasks_logs_and_artifacts(tdev):
    ids = seed(tdev)
    out = json.loads(ok(tdev.run("backup_history.py", "--date", "today", "--json")))
    assert out["evolutions"] == [ids["today"]]
    manifest = manifest_of(archives(tdev.backup_dir)[0])
    names = {e["path"] for e in manifest["files"]}
    assert f"history/{ids['today']}/tasks/{ids['task']}.json" in names
    assert not any(ids["old"] in name for name in names)
    assert manifest["store"]["mode"] == "records"
    assert manifest["store"]["counts"] == {"evolutions": 1, "tasks": 3, "spans": 5}
    assert tdev.run("backup_history.py", "--date", "15/01/2024").returncode == 2


def lose_everything(tdev):
    for folder in (tdev.history, tdev.config_dir, tdev.log_dir):
        shutil.rmtree(folder)
    tdev.mcp_config.unlink()


def test_restore_plans_without_confirm_then_restores_verifies_and_is_idempotent(tdev):
    seed(tdev)
    ok(tdev.run("backup.py", "--full"))
    skip = ("locks", "audit.log", "restore.json", "state.db", "worktrees", "tmp")
    before = {name: digest_tree(folder, skip) for name, folder in
              (("history", tdev.history), ("config", tdev.config_dir), ("logs", tdev.log_dir))}
    records = store_records()
    planned = tdev.run("restore.py", "--date", "today")
    plan = ok(planned, 1)  # no terminal, no --confirm: the plan, then "nothing restored"
    assert "run again with --confirm" in plan and "moved aside" in plan
    assert planned.stderr.endswith("error: nothing restored: add --confirm\n")
    assert "run again with --confirm" in ok(tdev.run("restore.py", "--date", "today", "--dry-run"))
    assert digest_tree(tdev.history, skip) == before["history"] and store_records() == records

    lose_everything(tdev)
    first = json.loads(ok(tdev.run("restore.py", "--date", "today", "--confirm", "--json")))
    assert first["restored"] and first["aside"]["history"] is None  # nothing was there to move aside
    after = {name: digest_tree(folder, skip) for name, folder in
             (("history", tdev.history), ("config", tdev.config_dir), ("logs", tdev.log_dir))}
    assert after == before and store_records() == records
    assert json.loads(tdev.mcp_config.read_text())["mcpServers"]
    record = json.loads((tdev.history / "restore.json").read_text())
    assert record["archive"].endswith(".tar.zst") and record["manifest"]["files"]
    verified = ok(tdev.run("verify_restore.py"))
    assert "OK" in verified.splitlines()[0]

    second = json.loads(ok(tdev.run("restore.py", "--date", "today", "--confirm", "--json")))
    assert digest_tree(tdev.history, skip) == before["history"] and store_records() == records
    aside = second["aside"]["history"]["aside"]
    assert (tdev.base / aside.rsplit("/", 1)[-1]).is_dir()  # the previous data is kept and named
    ok(tdev.run("verify_restore.py"))
    assert open_store().get_meta("last-verify")["status"] == "ok"


def test_the_measurement_cache_is_never_backed_up_and_a_restore_keeps_the_live_one(tdev):
    seed(tdev)
    cache = tdev.history / "measure_cache" / "ab"
    cache.mkdir(parents=True)
    (cache / "ab12.json").write_text('{"at backup": true}')
    ok(tdev.run("backup.py", "--full"))
    [full] = archives(tdev.backup_dir)
    assert not any(e["path"].startswith("history/measure_cache/") for e in manifest_of(full)["files"])
    (cache / "ab12.json").write_text('{"after the backup": true}')
    ok(tdev.run("restore.py", "--date", "today", "--confirm"))
    assert json.loads((cache / "ab12.json").read_text()) == {"after the backup": True}
    assert "OK" in ok(tdev.run("verify_restore.py")).splitlines()[0]


def test_verify_restore_finds_a_damaged_restored_file_and_an_unknown_restore(tdev):
    assert tdev.run("verify_restore.py").returncode == 3  # nothing restored yet: UNKNOWN
    ids = seed(tdev)
    ok(tdev.run("backup.py", "--full"))
    ok(tdev.run("restore.py", "--date", "today", "--confirm"))
    artifact = tdev.history / ids["old"] / "report.json"
    stamp = artifact.stat().st_mtime
    artifact.write_text('{"old": false}')
    import os

    os.utime(artifact, (stamp, stamp))  # same time, other bytes: silent corruption
    done = tdev.run("verify_restore.py", "--json")
    report = json.loads(ok(done, 2))
    assert report["status"] == "critical"
    assert "report.json" in next(c["summary"] for c in report["checks"] if c["name"] == "checksums")
    tdev.write_config("gates", "gates: {docstring: {threshold: high}}\n")
    assert "gates.yaml" in tdev.run("verify_restore.py").stdout


def test_a_flipped_byte_fails_verify_and_restore_refuses_leaving_live_data_alone(tdev):
    seed(tdev)
    ok(tdev.run("backup.py", "--full"))
    (path,) = archives(tdev.backup_dir)
    assert ok(tdev.run("verify_restore.py", "--archive", str(path))).startswith("VERIFY OK: ")
    flip_byte(path, path.stat().st_size // 2)
    damaged = tdev.run("verify_restore.py", "--archive", str(path))
    assert damaged.returncode == 2 and "CRITICAL" in damaged.stdout
    (tdev.history / "current.log").write_text("newer than the backup\n")
    before = digest_tree(tdev.base)
    refused = tdev.run("restore.py", "--date", "today", "--confirm")
    assert refused.returncode == 1 and refused.stderr.startswith("error: ") and "Traceback" not in refused.stderr
    assert digest_tree(tdev.base) == before  # nothing changed, and no staging folder is left
    assert not list(tdev.base.glob(".*restore-*"))


def test_a_backup_killed_half_way_leaves_no_complete_looking_archive(tdev):
    seed(tdev)
    sparse = tdev.history / "huge.bin"
    with open(sparse, "wb") as handle:
        handle.truncate(3 << 30)  # 3 GB of holes: long to hash, nothing on disk
    command = [sys.executable, str(ROOT_SCRIPTS / "backup.py"), "--full", "--no-s3"]
    child = subprocess.Popen(command, env=tdev.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(tdev.backup_dir.glob("full/*/.*.partial")) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert list(tdev.backup_dir.glob("full/*/.*.partial"))
    assert archives(tdev.backup_dir) == []
    assert tdev.run("restore.py", "--date", "today").returncode == 1  # nothing to restore from
    sparse.unlink()
    result = json.loads(ok(tdev.run("backup.py", "--full", "--no-s3", "--json")))
    assert any(".partial" in name for name in result["cleaned"])
    assert not list(tdev.backup_dir.glob("**/.*.partial")) and len(archives(tdev.backup_dir)) == 1


def test_hostile_archive_in_the_backup_folder_is_refused_and_nothing_is_written(tdev):
    seed(tdev)
    key = "full/2030-01-01/tdev-full-20300101T000000Z.tar.zst"
    craft(tdev.backup_dir / key, [entry("history/ok", b"x")], [(regular("history/../../../escaped"), b"x")])
    unchanged = ("locks", "audit.log", locks.backup_lock_path().name)  # the restore's lock is taken
    before = digest_tree(tdev.base, ignore=unchanged)
    done = tdev.run("restore.py", "--date", "2030-01-01", "--confirm")
    assert done.returncode == 1 and "'..'" in done.stderr
    assert digest_tree(tdev.base, ignore=unchanged) == before
    assert not (tdev.base.parent / "escaped").exists() and not list(tdev.base.glob(".*restore-*"))


def test_restore_refuses_while_an_evolution_runs(tdev):
    from evolution_seed import add_evolution

    seed(tdev)
    ok(tdev.run("backup.py", "--daily"))
    running = add_evolution(status="running", target="/srv/other")
    files = ("locks", "audit.log", "state.db", "state.db-wal", "state.db-shm")
    before, records = digest_tree(tdev.history, ignore=files), store_records()
    done = tdev.run("restore.py", "--date", "today", "--confirm")
    assert done.returncode == 1 and running["id"] in done.stderr and "stop_evolution.py" in done.stderr
    assert digest_tree(tdev.history, ignore=files) == before and store_records() == records
    assert "blocked" in ok(tdev.run("restore.py", "--date", "today"), 1)


def _file_size_limit(limit: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_disk_full_during_restore_leaves_live_data_untouched(tdev):
    seed(tdev, big_bytes=4 << 20)
    ok(tdev.run("backup.py", "--full"))
    (tdev.history / "current.log").write_text("live data after the backup\n")
    before = digest_tree(tdev.base)
    command = [sys.executable, str(ROOT_SCRIPTS / "restore.py"), "--date", "today", "--confirm"]
    done = subprocess.run(command, env=tdev.env, capture_output=True, text=True, timeout=120,
                          preexec_fn=_file_size_limit(1 << 20))  # writes past 1 MB fail: EFBIG, like ENOSPC
    assert done.returncode == 1, done.stderr
    assert "before changing live data" in done.stderr
    assert digest_tree(tdev.base) == before
    assert not list(tdev.base.glob(".*restore-*"))


@pytest.mark.parametrize("keep_daily", [2])
def test_retention_is_previewed_with_dry_run_then_applied(tdev, keep_daily):
    seed(tdev)
    settings = (tdev.config_dir / "settings.yaml").read_text().replace("keep_daily: 7", f"keep_daily: {keep_daily}")
    tdev.write_config("settings", settings.replace("keep_min: 3", "keep_min: 1"))  # the day rules alone
    noon = datetime.now().astimezone().replace(hour=12, minute=0, second=0, microsecond=0)
    tdev.pin_clock(noon)  # each run its own second: backup keys are stamped to the second
    ok(tdev.run("backup.py", "--daily"))
    (made,) = archives(tdev.backup_dir)
    old_keys = [f"daily/2024-01-{day:02d}/tdev-daily-2024011{day - 10}T020000Z.tar.zst" for day in (11, 12, 13)]
    for key in old_keys:
        (tdev.backup_dir / key).parent.mkdir(parents=True)
        (tdev.backup_dir / key).write_bytes(made.read_bytes())
    tdev.pin_clock(noon + timedelta(minutes=1))
    preview = json.loads(ok(tdev.run("backup.py", "--daily", "--dry-run", "--json")))
    assert preview["retention"]["action"] == "would delete"
    made_key = made.relative_to(tdev.backup_dir).as_posix()  # superseded by the one the run would make
    assert sorted(preview["retention"]["local"]) == sorted([*old_keys[:2], made_key])
    assert len(archives(tdev.backup_dir)) == 4
    tdev.pin_clock(noon + timedelta(minutes=2))
    ok(tdev.run("backup.py", "--daily"))
    assert len(archives(tdev.backup_dir)) == 2  # today's newest and the newest older day


def test_a_day_of_history_restores_into_the_live_store_and_keeps_the_rest(tdev):
    ids = seed(tdev)
    ok(tdev.run("backup_history.py", "--date", "today"))
    store = open_store()
    original = store.get_evolution(ids["today"])
    store.update_evolution(ids["today"], {"status": "killed", "error": "damaged after the backup"})
    store.close()
    shutil.rmtree(tdev.history / ids["today"])
    (tdev.history / ids["old"] / "later.json").write_text("{}")
    done = json.loads(ok(tdev.run("restore.py", "--date", "today", "--kind", "history", "--confirm", "--json")))
    assert [a["kind"] for a in done["archives"]] == ["history"]
    store = open_store()
    assert store.get_evolution(ids["today"]) == original
    assert store.get_evolution(ids["old"]) is not None  # other days stay
    assert (tdev.history / ids["today"] / "tasks" / f"{ids['task']}.json").exists()
    assert (tdev.history / ids["old"] / "later.json").exists()
    assert "OK" in ok(tdev.run("verify_restore.py")).splitlines()[0]


# ---- faults: a lost store, retention, the audit log, what restores set aside -----------------------------

def settings_with(tdev, **values) -> None:
    text = (tdev.config_dir / "settings.yaml").read_text()
    for key, value in values.items():
        text = re.sub(rf"(?m)^(\s*{key}:) \S+", rf"\1 {value}", text)
    tdev.write_config("settings", text)


def audit_lines(tdev) -> list[dict]:
    return [json.loads(line) for line in (tdev.history / "audit.log").read_text().splitlines()]


def lose_store(tdev) -> None:
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (tdev.history / name).unlink(missing_ok=True)


def test_a_lost_store_is_critical_is_never_backed_up_and_its_last_good_backup_is_kept(tdev, utc):
    seed(tdev)
    records = store_records()
    tdev.pin_clock(MARCH_1)
    good = json.loads(ok(tdev.run("backup.py", "--daily", "--json")))
    lose_store(tdev)

    health = tdev.run("health_check.py", "--json")
    store = next(c for c in json.loads(health.stdout)["checks"] if c["name"] == "store")
    assert health.returncode == 2 and store["status"] == "critical", store
    assert "state store is missing while the history shows it existed (2 evolution folder(s)" in store["summary"]
    assert f"restore it: python scripts/restore.py --date 2030-03-01 --confirm ({good['key']} holds" in store["summary"]

    refused = tdev.run("backup.py", "--daily")
    assert refused.returncode == 1 and refused.stderr.startswith("error: the sqlite state store is missing")
    assert "a backup now would hold no store; restore it first: python scripts/restore.py --date 2030-03-01" \
        in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert [p.name for p in archives(tdev.backup_dir)] == [Path(good["archive"]).name]
    assert audit_lines(tdev)[-1]["result"] == "refused"

    # init_evolution refuses too (DESIGN §8); an empty store made anyway (as older versions did), then
    # nightly backups of it under a tight retention, still never cost the last good backup
    refused = tdev.run("init_evolution.py")
    assert refused.returncode == 1 and "restore it: python scripts/restore.py --date 2030-03-01" in refused.stderr
    assert not (tdev.history / "state.db").exists()
    settings_with(tdev, keep_daily=1, keep_weekly=1)
    SQLiteStore.open(create=True).close()
    for day in (1, 2, 3):
        tdev.pin_clock(MARCH_1 + timedelta(days=day))
        result = json.loads(ok(tdev.run("backup.py", "--daily", "--json")))
    assert result["retention"]["kept_for_store"] == [good["key"]]
    assert sorted(p.name for p in archives(tdev.backup_dir)) == sorted([Path(good["archive"]).name,
                                                                        Path(result["archive"]).name])
    assert "their store holds history" in ok(tdev.run("backup.py", "--daily", "--dry-run"))

    ok(tdev.run("restore.py", "--date", "2030-03-01", "--confirm"))
    assert store_records() == records
    assert "OK" in ok(tdev.run("verify_restore.py")).splitlines()[0]


def test_retention_never_leaves_fewer_than_keep_min_backups_holding_the_store(tdev, utc):
    seed(tdev)
    settings_with(tdev, keep_daily=1, keep_weekly=1, keep_min=3)
    made = []
    for day in range(5):
        tdev.pin_clock(MARCH_1 + timedelta(days=day))
        made.append(json.loads(ok(tdev.run("backup.py", "--daily", "--json")))["key"])
    assert sorted(p.relative_to(tdev.backup_dir).as_posix() for p in archives(tdev.backup_dir)) == made[2:]


def test_restore_appends_to_the_audit_log_and_never_rewinds_it(tdev):
    seed(tdev)
    in_backup = (tdev.history / "audit.log").read_text()
    ok(tdev.run("backup.py", "--full"))
    ok(tdev.run("cleanup.py", "--temp", "--older-than", "24h"))  # audited after the backup
    before = audit_lines(tdev)

    done = json.loads(ok(tdev.run("restore.py", "--date", "today", "--confirm", "--json")))
    assert done["audit_log"] == "kept"
    after = audit_lines(tdev)
    assert after[:-1] == before and after[-1]["command"].startswith("restore.py") and after[-1]["result"] == "ok"
    assert "OK" in ok(tdev.run("verify_restore.py")).splitlines()[0]
    assert "audit.log  the live one kept (append-only)" in ok(tdev.run("restore.py", "--date", "today", "--confirm"))

    shutil.rmtree(tdev.history)  # nothing live left: the backup's copy is the best there is
    done = json.loads(ok(tdev.run("restore.py", "--date", "today", "--confirm", "--json")))
    assert done["audit_log"] is None
    restored = (tdev.history / "audit.log").read_text()
    assert restored.startswith(in_backup) and json.loads(restored.splitlines()[-1])["command"].startswith("restore.py")


def test_gc_removes_what_restores_set_aside_once_older_than_pre_restore_days(tdev, utc):
    seed(tdev)
    tdev.pin_clock(MARCH_1)
    ok(tdev.run("backup.py", "--full"))
    aside = Path(json.loads(ok(tdev.run("restore.py", "--date", "2030-03-01", "--confirm", "--json")))
                 ["aside"]["history"]["aside"])
    tdev.pin_clock(MARCH_1 + timedelta(days=2))
    later = Path(json.loads(ok(tdev.run("restore.py", "--date", "2030-03-01", "--confirm", "--json")))
                 ["aside"]["history"]["aside"])
    assert aside.name == "history.pre-restore-20300301T020000Z" and aside.is_dir() and later.is_dir()

    tdev.pin_clock(MARCH_1 + timedelta(days=6))
    assert not listed_in(ok(tdev.run("gc.py", "--dry-run")), aside)
    tdev.pin_clock(MARCH_1 + timedelta(days=8))
    dry = ok(tdev.run("gc.py", "--dry-run"))
    assert listed_in(dry, aside) and not listed_in(dry, later) and "over 7 days ago" in dry
    ok(tdev.run("gc.py"))
    assert not aside.exists() and later.is_dir() and (tdev.history / "state.db").exists()
    settings_with(tdev, pre_restore_days=1)
    ok(tdev.run("gc.py"))
    assert not later.exists()


def listed_in(output: str, path: Path) -> bool:
    return any(str(path) in line.split() for line in output.splitlines())


def test_two_backups_in_one_second_keep_both_archives(tdev):
    seed(tdev)
    noon = datetime.now().astimezone().replace(hour=12, minute=0, second=0, microsecond=0)
    tdev.pin_clock(noon)
    first = json.loads(ok(tdev.run("backup.py", "--daily", "--json")))
    second = json.loads(ok(tdev.run("backup.py", "--daily", "--json")))  # the same pinned second
    stamps = [(noon + timedelta(seconds=n)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") for n in (0, 1)]
    assert first["archive"].endswith(f"{stamps[0]}.tar.zst") and second["archive"].endswith(f"{stamps[1]}.tar.zst")
    assert {p.name for p in archives(tdev.backup_dir)} >= {Path(first["archive"]).name, Path(second["archive"]).name}


def test_a_backup_that_fails_writing_its_store_snapshot_says_folder_and_fix_and_is_audited(tdev):
    store = open_store(create=True)
    store.set_meta("bulk", "x" * (3 << 20))  # the snapshot outgrows the 1 MB the backup may write
    store.close()
    command = [sys.executable, str(ROOT_SCRIPTS / "backup.py"), "--daily"]
    done = subprocess.run(command, env=tdev.env, capture_output=True, text=True, timeout=120,
                          preexec_fn=_file_size_limit(1 << 20))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: backup failed: the store snapshot in {tdev.backup_dir}: ")
    assert f"free space in {tdev.backup_dir}, or point TDEV_BACKUP_DIR at a folder with room" in line
    last = audit_lines(tdev)[-1]
    assert last["command"].startswith("backup.py --daily") and last["result"] == "failed"
    assert last["error"] == line.removeprefix("error: ")
    assert archives(tdev.backup_dir) == []


def test_sqlite_disk_full_reads_as_enospc(tdev, tmp_path):
    import sqlite3

    from lib.ops import backups

    full = sqlite3.connect(tmp_path / "small.db")
    full.execute("PRAGMA max_page_count = 2")
    with pytest.raises(sqlite3.OperationalError) as failure:
        full.execute("CREATE TABLE t (x)")
        full.execute("INSERT INTO t VALUES (?)", ("x" * 100_000,))
    message = str(backups._backup_failure(failure.value, tdev.backup_dir))
    assert message == (f"backup failed: {tdev.backup_dir}: No space left on device; free space in {tdev.backup_dir}, "
                       "or point TDEV_BACKUP_DIR at a folder with room")
