"""A lost store (DESIGN §8): missing while the history shows this installation had one.

Only restore.py may bring it back. Every command that would create a store refuses instead (open_store
with create=True), so a cron job cannot start an empty store over the lost one, a backup cannot archive
the empty one, and retention cannot drop the last good backup. The evidence is read from the history
folder, the audit log and the local backup archives (lib/archives, the floor below).
"""

from __future__ import annotations

import json
import re

from lib import paths
from lib.errors import ToolError
from lib.store.base import backend_name

#: commands whose audit line proves a store was made here (init creates it, a run writes to it)
STORE_MAKERS = ("init_evolution.py", "run_evolution.py")
EVOLUTION_FOLDER = re.compile(r"^evo-\d{14}-[0-9a-f]+$")


class StoreLost(ToolError):
    """The store is missing while the history shows there was one: only restore.py may bring it back."""


def store_exists() -> bool:
    """Whether the state store is there (a SQLite file is looked at, not opened: opening a missing
    one says "no evolution history yet", which is not the news here)."""
    if backend_name() == "sqlite":
        from lib.store.sqlite import db_path

        return db_path().exists()
    from lib.store.dynamodb import DynamoDBStore  # late: boto3 is loaded only for a DynamoDB store

    return DynamoDBStore.table_exists()


def history_evidence() -> list[str]:
    """What shows that this installation has had a store: evolution folders, an audit line of a command
    that makes one, a local backup holding a store. Other audit lines do not count (a command run before
    init writes one)."""
    from lib.archives import repository  # late: the archives are read only for a missing store

    evidence = []
    history = paths.history_dir()
    folders = sorted(p for p in history.iterdir() if p.is_dir() and EVOLUTION_FOLDER.match(p.name)) \
        if history.is_dir() else []
    if folders:
        evidence.append(f"{len(folders)} evolution folder(s) such as {folders[0].name}")
    maker = _audited_store_maker()
    if maker:
        evidence.append(f"{paths.audit_log().name} records {maker}")
    with_store = repository.with_store(repository.list_local()) if repository.local_dir().is_dir() else []
    if with_store:
        evidence.append(f"{len(with_store)} backup(s) holding a store such as {with_store[0].key}")
    return evidence


def _audited_store_maker() -> str | None:
    try:
        with open(paths.audit_log(), encoding="utf-8", errors="replace") as lines:
            for line in lines:
                try:
                    command = str(json.loads(line).get("command", ""))
                except (ValueError, AttributeError):
                    continue
                if command.startswith(STORE_MAKERS):
                    return command.split()[0]
    except FileNotFoundError:
        pass
    return None


def lost_store() -> str | None:
    """What shows the store is lost (it is missing while the history shows it existed), or None."""
    if store_exists():  # first: the history's evidence is only read for a missing store
        return None
    return _missing_store_evidence()


def _missing_store_evidence() -> str | None:
    """For a store known to be missing: what shows it existed, or None (a new installation)."""
    evidence = history_evidence()
    if not evidence:
        return None
    return f"the {backend_name()} state store is missing while the history shows it existed ({', '.join(evidence)})"


def restore_hint() -> str:
    from lib.archives import repository

    return f"restore it: {repository.restore_command()}"


def refuse_lost_store() -> None:
    """StoreLost when the store is lost: this command would start an empty one over it."""
    if not store_exists():
        refuse_creating_store()


def refuse_creating_store() -> None:
    """StoreLost when a store its caller found missing, and is about to create, would start over a lost one."""
    lost = _missing_store_evidence()
    if lost:
        raise StoreLost(f"{lost}; this command would start an empty one", restore_hint())
