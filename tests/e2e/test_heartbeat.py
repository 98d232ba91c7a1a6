"""The dead man's switch: crontab.example's own lines, run by bash as cron runs them, ping the
heartbeat URL of their job (healthchecks.io protocol) on a local stand-in."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hooks_standin import PING_PATH, HooksStandIn

from lib import cli

ROOT = Path(__file__).resolve().parents[2]


def cron_line(job: str) -> str:
    """The shell command of crontab.example's line for a job (the five schedule fields dropped)."""
    for line in (ROOT / "crontab.example").read_text().splitlines():
        if f"TDEV_CRON_JOB={job} " in line and not line.startswith("#"):
            return line.split(None, 5)[5]
    raise AssertionError(f"no crontab line for job {job}")


@pytest.fixture
def cron(tdev):
    """Run a job's crontab line with bash, TDEV_HOME at this checkout, its log in a temporary CRON_LOG."""
    log_dir = tdev.base / "cron"
    log_dir.mkdir()

    def run(job: str, env: dict | None = None) -> tuple[int, str]:
        environment = {**tdev.env, "TDEV_HOME": str(ROOT), "CRON_LOG": str(log_dir),
                       "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", **(env or {})}
        done = subprocess.run(["bash", "-c", cron_line(job)], env=environment, capture_output=True, text=True,
                              timeout=120)
        log = re.search(r'"\$CRON_LOG/([\w.]+)"', cron_line(job)).group(1)
        return done.returncode, (log_dir / log).read_text() if (log_dir / log).exists() else ""

    return run


@pytest.fixture
def pings(tdev):
    standin = HooksStandIn().start()
    yield standin
    standin.stop()


def heartbeats(tdev, **urls: str) -> None:
    lines = "\n".join(f"    {job}: {url}" for job, url in urls.items())
    tdev.write_config("settings", f"monitoring:\n  heartbeat_urls:\n{lines}\n")


def test_a_job_that_succeeds_pings_start_then_success(tdev, store, cron, pings):
    heartbeats(tdev, cleanup=pings.ping_url)
    code, log = cron("cleanup")
    assert code == 0, log
    assert pings.pings() == ["/start", ""]
    assert [r["method"] for r in pings.requests] == ["GET", "GET"]


def test_each_run_pings_with_its_own_run_id(tdev, store, cron, pings):
    heartbeats(tdev, cleanup=pings.ping_url)
    assert cron("cleanup")[0] == 0 and cron("cleanup")[0] == 0
    runs = pings.ping_runs()
    assert [kind for kind, _ in runs] == ["/start", "", "/start", ""]
    assert runs[0][1] == runs[1][1] and runs[2][1] == runs[3][1] and runs[0][1] != runs[2][1]
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", rid) for _, rid in runs)


def test_a_job_that_fails_pings_start_then_fail(tdev, store, cron, pings):
    heartbeats(tdev, cleanup=pings.ping_url)
    with cli.lock("cleanup"):  # a previous run still holds the lock: this one fails at once
        code, log = cron("cleanup")
    assert code == 1 and "cleanup is already running" in log
    assert pings.pings() == ["/start", "/fail"]
    assert len({rid for _, rid in pings.ping_runs()}) == 1  # the failure ends the run that started


def test_a_check_that_could_judge_succeeded_and_its_notify_note_is_logged(tdev, store, cron, pings):
    heartbeats(tdev, stuck_processes=pings.ping_url)
    code, log = cron("stuck_processes")
    note, verdict = log.splitlines()[:2]  # the notification goes out before the report prints
    assert code == 0 and verdict.startswith("STUCK OK: ")
    assert note.startswith("note: --notify:")  # the crontab line carries --notify; there is no notify.yaml here
    assert pings.pings() == ["/start", ""]


def test_a_failing_ping_never_fails_the_job_and_does_not_show_the_url(tdev, store, cron):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}{PING_PATH}"
    heartbeats(tdev, cleanup=closed)
    code, log = cron("cleanup")
    assert code == 0, log
    assert "warning: heartbeat cleanup (start): cannot reach 127.0.0.1" in log
    assert "warning: heartbeat cleanup (success): cannot reach 127.0.0.1" in log
    assert PING_PATH not in log


def test_a_secret_in_the_url_comes_from_the_environment(tdev, store, cron, pings):
    heartbeats(tdev, cleanup=pings.url + "/ping/${TDEV_HC_PING_KEY}")
    code, _ = cron("cleanup", {"TDEV_HC_PING_KEY": PING_PATH.rsplit("/", 1)[-1]})
    assert code == 0 and pings.pings() == ["/start", ""]
    code, log = cron("cleanup")  # the variable is missing: no ping, one warning, the job still succeeds
    assert code == 0 and pings.pings() == ["/start", ""]
    assert "warning: heartbeat cleanup: TDEV_HC_PING_KEY is not set" in log


def test_a_job_without_a_url_or_outside_cron_sends_nothing(tdev, store, cron, pings):
    heartbeats(tdev, backup=pings.ping_url)
    code, _ = cron("cleanup")
    assert code == 0 and tdev.run("cleanup.py", "--temp", "--older-than", "24h").returncode == 0
    assert pings.requests == []
