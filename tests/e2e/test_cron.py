"""Cron habits: every line of crontab.example, run as cron runs it (no terminal), with the test
installation. Cron mails (or appends to the job's log) whatever a job prints, so a job that went
well prints nothing; --verbose brings its report back; read and check lines print their report,
which is what they are scheduled for (and what a pipe or a monitoring system reads)."""

from __future__ import annotations

import shutil
import subprocess

import boto3
import pytest
from backup_helpers import seed

from tests.e2e.test_runbook_contract import ROOT, crontab_commands

#: Read commands: their output is the report a person reads in morning.log, evening.log, ...
REPORTS = {"show_evolution_history.py", "show_metrics.py", "show_costs.py", "analyze_performance.py"}
#: Check commands: monitoring-plugin output, first line and exit code, whatever reads it.
CHECKS = {"health_check.py", "check_stuck_processes.py", "security_audit.py"}
PROM_DIR = "/var/lib/node_exporter/textfile_collector"


@pytest.fixture
def installation(tdev, aws):
    """Laid out like /opt/t-developer: scripts/ and evolution_history/ under TDEV_HOME, the S3 bucket made."""
    (tdev.base / "scripts").symlink_to(ROOT / "scripts")
    (tdev.base / "evolution_history").symlink_to(tdev.history)
    tdev.env["TDEV_HOME"] = str(tdev.base)
    tdev.monkeypatch.setenv("TDEV_HOME", str(tdev.base))
    boto3.client("s3").create_bucket(Bucket="t-developer-backups")
    assert tdev.run("init_evolution.py").returncode == 0
    seed(tdev)
    return tdev


def cron(tdev, argv: list[str], *extra: str):
    """The line's command from TDEV_HOME, stdout and stderr captured: no terminal, as under cron."""
    argv = [arg.replace(PROM_DIR, str(tdev.base)) for arg in argv]
    return tdev.run(argv[0].removeprefix("scripts/"), *argv[1:], *extra, cwd=tdev.base)


def test_every_crontab_job_prints_nothing_when_it_went_well(installation):
    jobs = []
    for argv in crontab_commands():
        script = argv[0].removeprefix("scripts/")
        done = cron(installation, argv)
        if script in REPORTS | CHECKS:
            assert done.returncode in (0, 1, 2) and done.stdout.strip(), f"{argv}: {done.stderr}"
            continue
        jobs.append(script)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), argv
    assert set(jobs) == {"cleanup.py", "backup_history.py", "export_metrics.py", "update_patterns.py",
                         "weekly_maintenance.py", "rotate_secrets.py", "archive_logs.py",
                         "generate_monthly_report.py", "backup.py"}
    assert (installation.base / "tdeveloper.prom").read_text().startswith("# HELP")
    assert {path.parts[-3] for path in installation.backup_dir.glob("*/*/*.tar.zst")} == {"history", "daily", "full"}


def test_verbose_brings_the_report_back_and_problems_still_reach_stderr(installation):
    daily = cron(installation, ["scripts/backup.py", "--daily"], "--verbose")
    assert daily.returncode == 0 and "archive" in daily.stdout and "s3://t-developer-backups/daily/" in daily.stdout
    put = cron(installation, ["scripts/export_metrics.py", "--format", "cloudwatch"], "-v")
    assert put.returncode == 0 and "EvolutionSuccessRate" in put.stdout
    assert "metrics in CloudWatch namespace TDeveloper" in put.stderr
    local_only = cron(installation, ["scripts/backup.py", "--daily"], "--no-s3")
    assert (local_only.returncode, local_only.stdout, local_only.stderr) == (0, "", "")

    installation.env["TDEV_BACKUP_BUCKET"] = "no-such-bucket"  # the offsite copy fails: the report is shown
    failed = cron(installation, ["scripts/backup.py", "--daily"])
    assert failed.returncode == 1 and "archive" in failed.stdout and "bucket does not exist" in failed.stdout
    assert failed.stderr.startswith("error: the off-site copy failed: ")
    assert "the local archive is kept" in failed.stderr

    installation.env.pop("AWS_ACCESS_KEY_ID")
    installation.env.pop("AWS_SECRET_ACCESS_KEY")
    installation.env["AWS_SHARED_CREDENTIALS_FILE"] = str(installation.base / "none")
    skipped = cron(installation, ["scripts/backup_history.py", "--date", "today"])
    assert skipped.returncode == 1  # a wanted off-site copy that cannot be made is a failure, said on stderr
    assert skipped.stderr.startswith("error: the off-site copy cannot be made: ") and "--no-s3" in skipped.stderr


@pytest.mark.skipif(not shutil.which("logrotate"), reason="logrotate is not installed")
def test_the_logrotate_snippet_truncates_cron_logs_and_renames_the_audit_log(tmp_path):
    log_dir, home = tmp_path / "log", tmp_path / "home"
    (log_dir / "cron").mkdir(parents=True)
    (home / "evolution_history").mkdir(parents=True)
    (log_dir / "cron" / "backup.log").write_text("error: yesterday's run\n")
    audit = home / "evolution_history" / "audit.log"
    audit.write_text('{"result": "ok"}\n')
    audit.chmod(0o600)
    conf = tmp_path / "logrotate.conf"
    conf.write_text((ROOT / "config" / "logrotate.conf").read_text()
                    .replace("/var/log/t-developer", str(log_dir)).replace("/opt/t-developer", str(home)))
    with audit.open("a") as writer:  # a command writing its audit line while logrotate runs
        done = subprocess.run(["logrotate", "--force", "--state", str(tmp_path / "state"), str(conf)],
                              capture_output=True, text=True, timeout=60)
        writer.write('{"result": "during"}\n')
    assert done.returncode == 0, done.stderr
    (kept,) = (log_dir / "cron").glob("backup.log-*")
    assert kept.read_text() == "error: yesterday's run\n" and (log_dir / "cron" / "backup.log").read_text() == ""
    (renamed,) = audit.parent.glob("audit.log-*")
    assert renamed.read_text() == '{"result": "ok"}\n{"result": "during"}\n'
    assert audit.read_text() == "" and oct(audit.stat().st_mode & 0o777) == "0o600"
