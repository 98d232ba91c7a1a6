"""The disaster-recovery drill (dr_test.py --simulate): restore the stored backups into a scratch folder.

For each place backups are kept (the local backup folder, and the S3 bucket when an off-site
copy is configured):
1. pick     the newest daily or full backup there, as `restore.py --date today` picks it (a daily
            one over the full one before it); its age is that copy's RPO, past --max-rpo a failure
2. restore  restore.py's code path with every location pointed at a scratch installation (an S3
            copy is downloaded into the scratch folder); every member's SHA-256 is checked; timed:
            the RTO, download included
3. verify   verify_restore.py's checks on the scratch installation: each restored file's size and
            SHA-256, the store's integrity check and row counts, every config file

The report's RPO and RTO are the worst of the places: what losing the machine would cost. Live
data and the backup folder are only read; every write goes under the scratch folder, which is
removed afterwards unless asked to keep it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from lib import humanize, timeparse
from lib.archives import repository
from lib.backup import restore, verify
from lib.checks import worst
from lib.errors import ToolError


@contextlib.contextmanager
def scoped_env(**values: str):
    """Point lib.paths somewhere else for a while (every location is read from the environment)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def scratch_env(scratch: Path, backups: Path) -> dict:
    """A scratch installation that finds (or downloads) its archives in backups."""
    return {"TDEV_HISTORY_DIR": str(scratch / "evolution_history"), "TDEV_CONFIG_DIR": str(scratch / "config"),
            "TDEV_LOG_DIR": str(scratch / "logs"), "TDEV_BACKUP_DIR": str(backups),
            "TDEV_MCP_CONFIG": str(scratch / "mcp" / "claude.mcp.json"), "TDEV_STATE_BACKEND": "sqlite"}


def _row(name: str, status: str, detail: str, seconds: float | None = None, **extra) -> dict:
    return {"name": name, "status": status, "seconds": seconds, "detail": detail, **extra}


def _pick(where: str, place: str, backups: list, today: date, max_age: timedelta) -> tuple[list, dict]:
    """The chain restore.py would apply today, and the row that reports its age against the limit."""
    chain = repository.chain_for(backups, today)
    if not chain:
        return [], _row(f"{where} pick", "failed", f"no daily or full backup in {place}", rpo_s=None)
    age = timeparse.utcnow() - chain[-1].created
    over = f" over {chain[0].key}" if len(chain) > 1 else ""
    return chain, _row(f"{where} pick", "ok" if age <= max_age else "failed",
                       f"{chain[-1].key}{over} is {humanize.hours(age.total_seconds())} old "
                       f"(limit {humanize.hours(max_age.total_seconds())})", rpo_s=int(age.total_seconds()))


def _restore_and_verify(where: str, chain: list, today: date, env: dict) -> list[dict]:
    """Restore the chain into the scratch installation, then verify it there."""
    started = time.monotonic()
    try:
        with scoped_env(**env):
            done = restore.apply(chain, where, today)
    except ToolError as failure:
        return [_row(f"{where} restore", "failed", str(failure), round(time.monotonic() - started, 2)),
                _row(f"{where} verify", "skipped", "nothing was restored")]
    restored = _row(f"{where} restore", "ok", f"{done['files']} files checked against their SHA-256 and restored",
                    round(time.monotonic() - started, 2))
    started = time.monotonic()
    with scoped_env(**env):
        results, _ = verify.run(None)
    status = "ok" if worst(results) == "ok" else "failed"
    return [restored, _row(f"{where} verify", status, "; ".join(f"{r.name} {r.status}: {r.summary}" for r in results),
                           round(time.monotonic() - started, 2))]


def _location(where: str, place: str, backups: list, today: date, max_age: timedelta, env: dict) -> list[dict]:
    chain, picked = _pick(where, place, backups, today, max_age)
    if not chain:
        return [picked]
    return [picked, *_restore_and_verify(where, chain, today, env)]


def _offsite_rows(offsite: repository.Offsite, today: date, max_age: timedelta, scratch: Path) -> list[dict]:
    if not offsite.wanted:
        return [_row("s3 pick", "skipped", f"no off-site copy configured ({offsite.reason})")]
    if not offsite.ready:
        return [_row("s3 pick", "failed", f"the off-site copies cannot be reached: {offsite.reason}", rpo_s=None)]
    try:
        backups = repository.list_s3(offsite.bucket)
    except ToolError as failure:
        return [_row("s3 pick", "failed", str(failure), rpo_s=None)]
    env = {**scratch_env(scratch / "s3", scratch / "s3-downloads"), "TDEV_BACKUP_BUCKET": offsite.bucket}
    return _location("s3", f"s3://{offsite.bucket}/", backups, today, max_age, env)


def simulate(max_rpo: timedelta, scratch_parent: Path | None = None, keep: bool = False) -> dict:
    """Run the drill; returns {status, rpo_s, rto_s, steps, scratch}."""
    today = timeparse.utcnow().astimezone().date()
    offsite = repository.offsite(True)
    folder = repository.local_dir()
    if scratch_parent:
        scratch_parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="tdev-dr-drill-", dir=scratch_parent))
    try:
        steps = _location("local", str(folder), repository.list_local(folder), today, max_rpo,
                          scratch_env(scratch / "local", folder))
        steps += _offsite_rows(offsite, today, max_rpo, scratch)
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
    ages = [step["rpo_s"] for step in steps if step.get("rpo_s") is not None]
    times = [step["seconds"] for step in steps if step["name"].endswith("restore") and step["status"] == "ok"]
    return {"status": "failed" if any(s["status"] == "failed" for s in steps) else "passed",
            "rpo_s": max(ages) if ages else None, "rto_s": max(times) if times else None,
            "steps": steps, "scratch": str(scratch) if keep else None}
