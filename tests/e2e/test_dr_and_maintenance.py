"""dr_test.py, weekly_maintenance.py and the backup health checks."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

from backup_helpers import archives, digest_tree, flip_byte, ok, seed

from lib import health, timeparse
from lib.backup import repository

ROOT = Path(__file__).resolve().parents[2]


def test_dr_drill_backs_up_loses_restores_verifies_and_never_touches_live_data(tdev):
    seed(tdev)
    no_backup = tdev.run("dr_test.py", "--simulate")
    assert no_backup.returncode == 1 and "RPO no backup" in no_backup.stdout
    ok(tdev.run("backup.py", "--daily"))
    before = digest_tree(tdev.base, ignore=())
    report = json.loads(ok(tdev.run("dr_test.py", "--simulate", "--json", "--scratch", str(tdev.base / "drills"))))
    assert report["status"] == "passed" and report["rpo_s"] < 600 and report["rto_s"] >= 0
    assert [s["name"] for s in report["steps"]] == ["rpo", "backup", "lose", "restore", "verify"]
    assert all(s["status"] == "ok" for s in report["steps"])
    assert digest_tree(tdev.base, ignore=()) == before  # live data read, never written
    assert list((tdev.base / "drills").iterdir()) == []  # the scratch folder is gone
    table = ok(tdev.run("dr_test.py", "--simulate"))
    assert "drill PASSED: RPO 0.0 h, RTO" in table
    assert tdev.run("dr_test.py").returncode == 2


def test_dr_drill_fails_when_the_newest_backup_is_too_old(tdev):
    seed(tdev)
    ok(tdev.run("backup.py", "--daily"))
    done = tdev.run("dr_test.py", "--simulate", "--max-rpo", "0s", "--json")
    report = json.loads(ok(done, 1))
    assert report["steps"][0]["status"] == "failed" and report["status"] == "failed"


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
                                       "(python scripts/backup.py --daily)")
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
    lock = tdev.history / "locks" / "backup.lock"
    with open(lock, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        held = tdev.run("health_check.py", "--post-recovery", "--json")
    checks = {c["name"]: c for c in json.loads(held.stdout)["checks"]}
    assert checks["restore_verify"]["status"] == "ok"
    assert checks["recovery_locks"]["status"] == "warning" and "backup" in checks["recovery_locks"]["summary"]
    assert run_check("recovery_locks") == ("ok", "no lock is held")
    assert os.path.exists(tdev.history / "restore.json")
