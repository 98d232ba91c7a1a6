"""init_evolution: lay down what a fresh installation needs; never overwrite what exists."""

from __future__ import annotations

import shutil

from lib import paths
from lib.store import open_store, refuse_lost_store
from lib.timeparse import iso

SHIPPED_CONFIG = paths.CODE_ROOT / "config"
CONFIG_FILES = ("settings", "agents", "alerts", "thresholds", "gates")


def initialise() -> list[str]:
    """Create folders, the store and missing config files; one line per thing done or found. Refuses
    before anything when the store is lost (DESIGN §8: restore.py brings it back)."""
    home = paths.make_home()
    refuse_lost_store()
    done = [f"created {home} (TDEV_HOME)"] if home else []
    for folder in (paths.history_dir(), paths.worktrees_dir(), paths.tmp_dir(), paths.locks_dir()):
        existed = folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        done.append(f"{'exists ' if existed else 'created'} {folder}")
    store = open_store(create=True)
    if store.get_meta("installed_at") is None:  # backup checks allow a first day without a backup
        store.set_meta("installed_at", iso())
    done.append(f"store    {store.backend} ({sum(store.counts().values())} rows)")
    for name in CONFIG_FILES:
        target = paths.config_dir() / f"{name}.yaml"
        if target.exists():
            done.append(f"exists  {target}")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SHIPPED_CONFIG / f"{name}.yaml", target)
            done.append(f"created {target}")
    return done
