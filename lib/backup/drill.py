"""The disaster-recovery drill (dr_test.py --simulate), played in a scratch folder.

1. rpo      the newest real daily or full backup (local, and S3 when configured): its age is the RPO
2. backup   a full backup of the live data into the scratch folder (reads live data, writes none)
3. lose     the scratch installation starts empty, as a new machine after the loss
4. restore  restore.py's code path with every location pointed at the scratch folder; timed: RTO
5. verify   verify_restore.py's checks on the restored scratch data

Live data is only ever read: every write goes under the scratch folder, which is removed
afterwards unless asked to keep it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from lib import humanize, timeparse
from lib.backup import jobs, repository, restore, verify
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


def scratch_env(scratch: Path) -> dict:
    return {"TDEV_HISTORY_DIR": str(scratch / "evolution_history"), "TDEV_CONFIG_DIR": str(scratch / "config"),
            "TDEV_LOG_DIR": str(scratch / "logs"), "TDEV_BACKUP_DIR": str(scratch / "backups"),
            "TDEV_MCP_CONFIG": str(scratch / "mcp" / "claude.mcp.json"), "TDEV_STATE_BACKEND": "sqlite"}


def _rpo(max_age: timedelta) -> dict:
    usable, reason = repository.s3_status(True)
    note = "" if usable else f" (S3 not searched: {reason})"
    try:
        newest = repository.newest(repository.list_all(s3=usable), ("daily", "full"))
    except ToolError as failure:
        newest, note = repository.newest(repository.list_local(), ("daily", "full")), f" (S3: {failure})"
    if newest is None:
        return {"status": "failed", "detail": f"no daily or full backup yet{note}", "rpo_s": None}
    age = timeparse.utcnow() - newest.created
    status = "ok" if age <= max_age else "failed"
    return {"status": status, "rpo_s": int(age.total_seconds()),
            "detail": f"newest backup {newest.key} is {humanize.hours(age.total_seconds())} old "
                      f"(limit {humanize.hours(max_age.total_seconds())}){note}"}


def _step(steps: list, name: str, action) -> dict | None:
    """Run one step, timing it; a failure is recorded and later steps are skipped."""
    if any(step["status"] == "failed" for step in steps if step["name"] != "rpo"):
        steps.append({"name": name, "status": "skipped", "seconds": None, "detail": "an earlier step failed"})
        return None
    started = time.monotonic()
    try:
        outcome = action()
        status, detail = outcome.pop("status", "ok"), outcome.pop("detail", "")
    except ToolError as failure:
        outcome, status, detail = {}, "failed", str(failure)
    steps.append({"name": name, "status": status, "seconds": round(time.monotonic() - started, 2),
                  "detail": detail, **outcome})
    return outcome if status != "failed" else None


def simulate(max_rpo: timedelta, scratch_parent: Path | None = None, keep: bool = False) -> dict:
    """Run the drill; returns {status, rpo_s, rto_s, steps, scratch}."""
    steps: list[dict] = []
    rpo = _rpo(max_rpo)
    steps.append({"name": "rpo", "seconds": 0.0, **rpo})
    if scratch_parent:
        scratch_parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="tdev-dr-drill-", dir=scratch_parent))
    env = scratch_env(scratch)
    today = timeparse.utcnow().astimezone().date()
    try:
        def backup() -> dict:
            made = jobs.create("full", s3=False, prune=False, folder=Path(env["TDEV_BACKUP_DIR"]))
            return {"detail": f"{made['files']} files, {humanize.size(made['bytes_in'])} of live data into "
                              f"{made['key']}"}

        def lose() -> dict:
            gone = [env[key] for key in ("TDEV_HISTORY_DIR", "TDEV_CONFIG_DIR", "TDEV_LOG_DIR")]
            if any(os.path.exists(path) for path in gone):
                return {"status": "failed", "detail": "the scratch installation is not empty"}
            return {"detail": "history, config, logs and MCP config gone (scratch installation is empty)"}

        def recover() -> dict:
            with scoped_env(**env):
                done = restore.run(today, "local", "full")
            return {"detail": f"{done['files']} files verified and restored"}

        def check() -> dict:
            with scoped_env(**env):
                results, _ = verify.run(None)
            status = worst(results)
            return {"status": "ok" if status == "ok" else "failed",
                    "detail": "; ".join(f"{r.name} {r.status}: {r.summary}" for r in results)}

        _step(steps, "backup", backup)
        _step(steps, "lose", lose)
        _step(steps, "restore", recover)
        _step(steps, "verify", check)
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
    restored = next(step for step in steps if step["name"] == "restore")
    return {"status": "failed" if any(s["status"] != "ok" for s in steps) else "passed",
            "rpo_s": rpo["rpo_s"], "rto_s": restored["seconds"] if restored["status"] == "ok" else None,
            "steps": steps, "scratch": str(scratch) if keep else None}
