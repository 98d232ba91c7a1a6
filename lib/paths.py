"""Where things live (DESIGN §2): one place for every default and its env override."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from lib.errors import NotFound

log = logging.getLogger(__name__)

#: Where a runner can run (DESIGN §10): this machine, or an ECS Fargate task started by Step Functions. Here,
#: with the other locations, so that run_evolution.py --help names them without loading the config schema.
EXECUTORS = ("local", "stepfunctions")
#: The checkout holding lib/, scripts/ and the shipped config/: where the code is, whatever TDEV_HOME says.
CODE_ROOT = Path(__file__).resolve().parent.parent
#: The measurement cache inside the history folder (lib.quality.measure): derived data, never backed up (DESIGN §8).
MEASURE_CACHE = "measure_cache"


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def root() -> Path:
    """The project root: the folder holding scripts/, or TDEV_HOME. TDEV_HOME must name a folder that exists:
    a mistyped one must fail every command, not grow a second installation (only init_evolution.py,
    through make_home, creates it)."""
    home = _env_path("TDEV_HOME")
    if home is None:
        return CODE_ROOT
    if not home.is_dir():
        what = "a file, not a folder" if home.exists() else "a folder that does not exist"
        raise NotFound(f"TDEV_HOME={home} names {what}",
                       f"fix or unset TDEV_HOME (unset, the root is {CODE_ROOT}); to make a new installation there, "
                       "run python scripts/init_evolution.py")
    return home


def make_home() -> Path | None:
    """init_evolution.py: create the folder TDEV_HOME names, if it is set and missing; the folder if created."""
    home = _env_path("TDEV_HOME")
    if home is None or home.exists():  # a file there is refused by root()
        return None
    home.mkdir(parents=True)
    return home


def config_dir() -> Path:
    return _env_path("TDEV_CONFIG_DIR") or root() / "config"


def history_dir() -> Path:
    return _env_path("TDEV_HISTORY_DIR") or root() / "evolution_history"


def current_log() -> Path:
    return history_dir() / "current.log"


def evolution_dir(evolution_id: str) -> Path:
    """Per-evolution folder: its log and task artifacts."""
    return history_dir() / evolution_id


def worktrees_dir() -> Path:
    return history_dir() / "worktrees"


def tmp_dir() -> Path:
    return history_dir() / "tmp"


def locks_dir() -> Path:
    return history_dir() / "locks"


def audit_log() -> Path:
    return history_dir() / "audit.log"


def _writable_or_fallback(env: str, default: Path, fallback: Path, what: str) -> Path:
    """Use the configured folder; the runbook default falls back when we may not write it."""
    explicit = _env_path(env)
    if explicit:
        return explicit
    try:
        default.mkdir(parents=True, exist_ok=True)
        if os.access(default, os.W_OK):
            return default
    except OSError:
        pass
    log.warning("%s %s is not writable; using %s", what, default, fallback)
    return fallback


def log_dir() -> Path:
    return _writable_or_fallback(
        "TDEV_LOG_DIR", Path("/var/log/t-developer"), history_dir() / "logs", "log folder"
    )


def backup_dir() -> Path:
    return _writable_or_fallback(
        "TDEV_BACKUP_DIR", Path("/backups/t-developer"), history_dir() / "backups", "backup folder"
    )


def mcp_config() -> Path:
    return _env_path("TDEV_MCP_CONFIG") or root() / "packages" / "mcp" / "clients" / "claude.mcp.json"


def mcp_log_dir() -> Path:
    return _env_path("TDEV_MCP_LOG_DIR") or Path.home() / ".mcp" / "logs"
