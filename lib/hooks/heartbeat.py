"""Dead man's switch for cron jobs (DESIGN §9), on the healthchecks.io protocol.

A crontab line names its job in TDEV_CRON_JOB; cli.run then GETs `<url>/start` before the
command, `<url>` after it succeeded and `<url>/fail` after it failed, the URL being
settings.yaml monitoring.heartbeat_urls.<job>. A job that never runs is noticed by the
monitor, which stops hearing from it. A ping that fails is one warning on stderr and never
changes the job's exit code. A URL that holds a secret (a ping key) takes it from the
environment: `https://hc-ping.com/${TDEV_HC_PING_KEY}/backup`. Every ping of a run carries
`?rid=<uuid>`, healthchecks.io's run id, so that the monitor tells overlapping runs apart.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable

from lib import config
from lib.adapters import alert_delivery
from lib.errors import ConfigError, ToolError

JOB_ENV = "TDEV_CRON_JOB"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand(url: str) -> str:
    """The URL with each ${VAR} filled from the environment; ToolError naming a variable that is not set."""

    def value(match: re.Match) -> str:
        found = os.environ.get(match.group(1), "").strip()
        if not found:
            raise ToolError(f"{match.group(1)} is not set", "export it in the crontab (the heartbeat URL uses it)")
        return found

    return _PLACEHOLDER.sub(value, url).rstrip("/")


class Heartbeat:
    """The pings of one run of a job; silent (no pings) when the run is not a scheduled job with a URL."""

    def __init__(self, job: str | None, warn: Callable[[str], None]):
        self.job, self.warn = job, warn
        self.run_id = str(uuid.uuid4())  # the `rid` shared by this run's /start and its end (DESIGN §9)
        self.url: str | None = None
        self.timeout = 5.0
        if not job:
            return
        try:
            monitoring = config.settings()["monitoring"]
            configured = monitoring["heartbeat_urls"].get(job)
            self.timeout = float(monitoring["heartbeat_timeout_seconds"])
            self.url = expand(configured) if configured else None
        except ToolError as failure:  # a bad settings.yaml is the job's own error to report
            if not isinstance(failure, ConfigError):
                self.warn(f"warning: heartbeat {job}: {failure}; no ping sent")

    def start(self) -> None:
        self._ping("start")

    def finish(self, succeeded: bool) -> None:
        self._ping("success" if succeeded else "fail")

    def _ping(self, kind: str) -> None:
        if not self.url:
            return
        try:
            alert_delivery.ping(self.url if kind == "success" else f"{self.url}/{kind}", self.timeout,
                        {"rid": self.run_id})
        except ToolError as failure:
            self.warn(f"warning: heartbeat {self.job} ({kind}): {failure}; the job goes on")


def for_this_run(warn: Callable[[str], None]) -> Heartbeat:
    """The heartbeat of the job the environment names (TDEV_CRON_JOB)."""
    return Heartbeat(os.environ.get(JOB_ENV, "").strip() or None, warn)
