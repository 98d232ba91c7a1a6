"""Health checks of this machine's installation: config, state store, disk, backup folder, stuck evolutions,
locks."""

from __future__ import annotations

import shutil
import time

from lib import config, humanize, locks, paths
from lib.archives import repository
from lib.errors import ToolError
from lib.evolution import stuck
from lib.health import check
from lib.store import backend_name, lost_store, open_store, restore_hint

AREA = "local"
LOCK_AGE_LIMIT = 86400  # a cron lock older than a day deserves a look


@check("config", AREA)
def config_files(context: dict) -> tuple[str, str]:
    """Every config file loads and matches its schema."""
    problems = []
    for name in config.SCHEMAS:
        try:
            config.load(name)
        except ToolError as failure:
            problems.append(str(failure))
    if problems:
        return "critical", "; ".join(problems)
    return "ok", f"{len(config.SCHEMAS)} files valid in {paths.config_dir()}"


@check("store", AREA)
def store(context: dict) -> tuple[str, str]:
    """The state store opens and passes its integrity check; missing while history exists, it is lost."""

    try:
        opened = open_store()
    except ToolError as failure:  # a file that is not a database: as bad as a failed integrity check
        return "critical", str(failure)
    try:
        if not opened.exists:
            lost = lost_store()
            if lost:
                return "critical", f"{lost}; {restore_hint()}"
            return "warning", "no state store yet; create it: python scripts/init_evolution.py"
        verdict = opened.check()
        if verdict != "ok":
            return "critical", (f"{backend_name()} store fails its integrity check: {verdict[:200]}; restore it: "
                                "python scripts/restore.py --date <day> --confirm")
        counts = opened.counts()
        return "ok", (f"{backend_name()} store ok: {counts.get('evolutions', 0)} evolutions, "
                      f"{counts.get('tasks', 0)} tasks")
    finally:
        opened.close()


@check("disk", AREA)
def disk(context: dict) -> tuple[str, str]:
    """Free space where the evolution history lives, against settings health.min_free_disk_gb."""
    folder = paths.history_dir()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free_gb = shutil.disk_usage(folder).free / 1e9
    need = float(config.settings()["health"]["min_free_disk_gb"])
    if free_gb < need:
        return "critical", (f"{free_gb:.1f} GB free under {folder}, below {need:g} GB; "
                            "free space: python scripts/cleanup.py --temp --older-than 24h; python scripts/gc.py")
    return "ok", f"{free_gb:.1f} GB free under {folder} (minimum {need:g} GB)"


@check("backup_destination", "backup")
def backup_destination(context: dict) -> tuple[str, str]:
    """A backup can be written where backup.py writes it (a read-only or non-folder TDEV_BACKUP_DIR fails them all)."""
    try:
        repository.check_destination()
    except ToolError as failure:
        return "critical", str(failure)
    return "ok", f"backups can be written to {paths.backup_dir()}"


@check("stuck_evolutions", AREA)
def stuck_evolutions(context: dict) -> tuple[str, str]:
    """Active evolutions whose runner is gone or silent, overdue phases, orphaned agents (lib/evolution/stuck.py)."""

    result = stuck.scan(open_store())
    return result["status"], stuck.summary(result)


@check("stale_locks", AREA)
def stale_locks(context: dict) -> tuple[str, str]:
    """Cron locks held for over a day (still running?) or left by a run that died."""
    files = locks.lock_files()
    problems = []
    for path in files:
        age = time.time() - path.stat().st_mtime
        if age < LOCK_AGE_LIMIT:
            continue
        holder = path.read_text(encoding="utf-8", errors="replace").strip()
        shown = humanize.duration(age)
        if locks.lock_held(path):
            problems.append(f"{locks.lock_name(path)} held for {shown} ({holder or 'holder unknown'}): still running?")
        elif holder:
            problems.append(f"{locks.lock_name(path)} left {shown} ago by a run that died ({holder}); "
                            f"the lock is free, remove {path} to clear this")
    if problems:
        return "warning", "; ".join(problems)
    return "ok", f"no stale locks ({len(files)} lock file(s) in {paths.locks_dir()})"
