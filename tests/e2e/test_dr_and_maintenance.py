"""dr_test.py, weekly_maintenance.py and the backup health checks."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from backup_helpers import archives, digest_tree, flip_byte, local_only, ok, seed
from evolution_seed import add_evolution

from lib import health, locks, timeparse
from lib.archives import repository

ROOT = Path(__file__).resolve().parents[2]
MARCH_1 = datetime(2030, 3, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_offsite_copy(tdev):
    """These installations keep their backups local (the drill and the age of S3 copies: test_backup_s3.py)."""
    local_only(tdev)


def drill(tdev, *args: str, code: int = 0) -> dict:
    return json.loads(ok(tdev.run("dr_test.py", "--simulate", "--json", *args), code))


def test_dr_drill_restores_the_newest_stored_backup_and_never_touches_live_data(tdev, utc):
    seed(tdev)
    tdev.pin_clock(MARCH_1)
    no_backup = tdev.run("dr_test.py", "--simulate")
    assert no_backup.returncode == 1 and "RPO no backup" in no_backup.stdout
    assert f"no daily or full backup in {tdev.backup_dir}" in no_backup.stdout
    full = json.loads(ok(tdev.run("backup.py", "--full", "--json")))
    tdev.pin_clock(MARCH_1 + timedelta(hours=2))
    daily = json.loads(ok(tdev.run("backup.py", "--daily", "--json")))
    (tdev.history / "current.log").write_text("written after the last backup\n")  # live data moved on
    add_evolution()
    before = digest_tree(tdev.base, ignore=())

    tdev.pin_clock(MARCH_1 + timedelta(hours=5))
    report = drill(tdev, "--scratch", str(tdev.base / "drills"), "--keep")
    steps = {step["name"]: step for step in report["steps"]}
    assert list(steps) == ["local pick", "local restore", "local verify", "s3 pick"]
    assert report["status"] == "passed" and report["rpo_s"] == 3 * 3600 and report["rto_s"] >= 0
    assert steps["local pick"]["detail"] == f"{daily['key']} over {full['key']} is 3.0 h old (limit 26.0 h)"
    assert steps["s3 pick"] == {"name": "s3 pick", "status": "skipped", "seconds": None,
                                "detail": "no off-site copy configured (settings aws.backup_bucket is null)"}
    assert "checksums ok" in steps["local verify"]["detail"]
    assert "rows ok: 2 evolutions" in steps["local verify"]["detail"]  # the backup's two, not the live three
    scratch = Path(report["scratch"]) / "local" / "evolution_history"
    assert json.loads((scratch / "restore.json").read_text())["key"] == daily["key"]
    assert (scratch / "current.log").read_text() == "2024-01-15T10:00:00Z INFO evolution started\n"
    shutil.rmtree(report["scratch"])
    assert digest_tree(tdev.base, ignore=()) == before  # live data and backups read, never written
    assert list((tdev.base / "drills").iterdir()) == []
    table = ok(tdev.run("dr_test.py", "--simulate"))
    assert "drill PASSED: RPO 3.0 h, RTO" in table
    assert tdev.run("dr_test.py").returncode == 2


def test_dr_drill_fails_on_a_backup_too_old_or_damaged(tdev, utc):
    seed(tdev)
    tdev.pin_clock(MARCH_1)
    made = json.loads(ok(tdev.run("backup.py", "--daily", "--json")))
    tdev.pin_clock(MARCH_1 + timedelta(hours=30))
    report = drill(tdev, code=1)
    pick = report["steps"][0]
    assert report["status"] == "failed" and report["rpo_s"] == 30 * 3600
    assert pick["status"] == "failed" and pick["detail"].endswith("is 30.0 h old (limit 26.0 h)")
    assert [s["status"] for s in report["steps"][1:3]] == ["ok", "ok"]  # still restored and verified
    assert drill(tdev, "--max-rpo", "2d")["status"] == "passed"

    flip_byte(Path(made["archive"]), Path(made["archive"]).stat().st_size // 2)
    report = drill(tdev, "--max-rpo", "2d", code=1)
    steps = {step["name"]: step for step in report["steps"]}
    assert steps["local restore"]["status"] == "failed" and report["rto_s"] is None
    assert "damaged" in steps["local restore"]["detail"] or "SHA-256" in steps["local restore"]["detail"]
    assert steps["local verify"] == {"name": "local verify", "status": "skipped", "seconds": None,
                                     "detail": "nothing was restored"}


def fake_root(tdev) -> Path:
    """A project root whose scripts/ has the real backup.py and stand-ins for the other steps."""
    root = tdev.base / "root"
    scripts = root / "scripts"
    scripts.mkdir(parents=True)
    for name in ("_bootstrap.py", "backup.py"):
        (scripts / name).symlink_to(ROOT / "scripts" / name)
    (scripts / "cleanup.py").write_text("import os, sys\nprint('cleaned; dry run', os.environ.get('EVOLUTION_DRY_RUN'),"
                                        " ' '.join(sys.argv[1:]))\n")
    (scripts / "gc.py").write_text("import sys\nprint('error: gc broke', file=sys.stderr)\nsys.exit(1)\n")
    (scripts / "update_patterns.py").write_text("import sys\nprint('patterns from', sys.argv[2])\n")
    return root


def test_weekly_maintenance_runs_every_step_and_reports_each(tdev):
    seed(tdev)
    env = {"TDEV_HOME": str(fake_root(tdev))}
    done = tdev.run("weekly_maintenance.py", "--json", env=env)
    report = json.loads(ok(done, 1))
    steps = {s["step"]: s for s in report["steps"]}
    assert list(steps) == ["full backup", "cleanup", "gc", "archive logs", "update patterns"]
    assert steps["full backup"]["status"] == "ok" and len(archives(tdev.backup_dir)) == 1
    assert steps["cleanup"]["detail"] == "cleaned; dry run None --temp --older-than 24h --verbose"
    assert (steps["gc"]["status"], steps["gc"]["exit"], steps["gc"]["detail"]) == ("failed", 1, "error: gc broke")
    assert (steps["archive logs"]["status"], steps["archive logs"]["detail"]) == ("failed", "script missing")
    assert steps["update patterns"]["detail"] == f"patterns from {tdev.history}/"
    audit = json.loads((tdev.history / "audit.log").read_text().splitlines()[-1])
    assert audit["result"] == "failed" and audit["failed"] == ["gc", "archive logs"]

    table = tdev.run("weekly_maintenance.py", "--dry-run", env=env)
    assert table.returncode == 1 and "cleaned; dry run true" in table.stdout and "script missing" in table.stdout
    assert len(archives(tdev.backup_dir)) == 1  # the backup step was a dry run too


def test_weekly_maintenance_takes_its_lock(tdev):
    lock = tdev.history / "locks" / "weekly_maintenance.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        done = tdev.run("weekly_maintenance.py", env={"TDEV_HOME": str(fake_root(tdev))})
    assert done.returncode == 1 and "already running" in done.stderr


def run_check(name: str) -> tuple[str, str]:
    health.load_all()
    (result,) = health.run([health.REGISTRY[name]])
    return result.status, result.summary


def test_backup_age_warns_at_26_hours_and_is_critical_at_50(tdev):
    assert run_check("backup_age") == ("warning", f"no backup yet in {tdev.backup_dir} "
                                       "(python scripts/backup.py --daily); no off-site copy (settings "
                                       "aws.backup_bucket is null)")
    seed(tdev)
    ok(tdev.run("backup.py", "--daily", "--no-s3"))
    assert run_check("backup_age")[0] == "ok"
    (made,) = archives(tdev.backup_dir)
    for hours, status in ((30, "warning"), (60, "critical")):
        shutil.rmtree(tdev.backup_dir)
        created = timeparse.utcnow() - timedelta(hours=hours)
        old = tdev.backup_dir / repository.key_for("daily", created.date(), created)
        old.parent.mkdir(parents=True)
        old.write_bytes(b"archive")
        state, summary = run_check("backup_age")
        assert state == status and f"{hours}.0 h old" in summary
    del made


def test_last_verify_reports_the_outcome_kept_in_the_store(tdev):
    seed(tdev)
    assert run_check("last_verify") == ("ok", "no verify has run yet")
    ok(tdev.run("backup.py", "--full"))
    (path,) = archives(tdev.backup_dir)
    ok(tdev.run("verify_restore.py", "--archive", str(path)))
    assert run_check("last_verify")[0] == "ok"
    flip_byte(path, path.stat().st_size // 2)
    tdev.run("verify_restore.py", "--archive", str(path))
    state, summary = run_check("last_verify")
    assert state == "critical" and "checksums critical" in summary


def test_post_recovery_runs_the_verify_and_finds_held_locks(tdev):
    seed(tdev)
    assert run_check("restore_verify")[0] == "unknown"  # no restore recorded
    ok(tdev.run("backup.py", "--full"))
    ok(tdev.run("restore.py", "--date", "today", "--confirm"))
    lock = locks.backup_lock_path()
    with open(lock, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        held = tdev.run("health_check.py", "--post-recovery", "--json")
    checks = {c["name"]: c for c in json.loads(held.stdout)["checks"]}
    assert checks["restore_verify"]["status"] == "ok"
    assert checks["recovery_locks"]["status"] == "warning" and "backup" in checks["recovery_locks"]["summary"]
    assert run_check("recovery_locks") == ("ok", "no lock is held")
    assert os.path.exists(tdev.history / "restore.json")
