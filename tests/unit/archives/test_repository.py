"""Backup keys, selection by date and retention."""

from __future__ import annotations

from datetime import UTC, date, datetime

from lib.archives import repository


def backups(*specs: str) -> list[repository.Backup]:
    """'daily 2024-01-15T02:00' -> a Backup made then, in local time (its day folder is that local day), as
    restore --date and retention count days."""
    made = []
    for spec in specs:
        kind, when = spec.split()
        created = datetime.fromisoformat(when).astimezone()
        made.append(repository.parse_key(repository.key_for(kind, created.date(), created)))
    return made


def test_keys_round_trip_and_odd_names_are_ignored():
    created = datetime(2024, 1, 15, 2, 0, 5, tzinfo=UTC)
    key = repository.key_for("daily", date(2024, 1, 15), created)
    assert key == "daily/2024-01-15/tdev-daily-20240115T020005Z.tar.zst"
    assert repository.parse_key(key).created == created
    for odd in ("daily/2024-01-15/tdev-full-20240115T020005Z.tar.zst", "daily/x/.tdev-daily-1.tar.zst.partial",
                "weekly/2024-01-15/tdev-weekly-20240115T020005Z.tar.zst"):
        assert repository.parse_key(odd) is None


def test_restore_date_picks_the_newest_before_the_end_of_that_day_over_its_full_base():
    items = backups("full 2024-01-14T12:00", "daily 2024-01-14T11:00", "daily 2024-01-15T12:00",
                    "daily 2024-01-17T12:00", "history 2024-01-15T12:30")
    chain = repository.chain_for(items, date(2024, 1, 15))
    assert [b.key for b in chain] == [items[0].key, items[2].key]
    assert repository.chain_for(items, date(2024, 1, 14)) == [items[0]]  # the full one is newer that day
    assert repository.chain_for(items, date(2024, 1, 13)) == []
    assert repository.chain_for(items, date(2024, 1, 15), "history") == [items[4]]


def test_retention_keeps_newest_per_day_and_per_week():
    days = [f"daily 2024-01-{d:02d}T02:00" for d in range(1, 16)] + ["daily 2024-01-15T14:00"]
    weeks = [f"full 2024-01-{d:02d}T03:00" for d in (1, 7, 8, 14, 15)]
    items = backups(*days, *weeks)
    doomed, rescued = repository.retention_plan(items, keep_daily=3, keep_weekly=2, keep_min=3)
    kept = [b for b in items if b.key not in {b.key for b in doomed}]
    assert [b.created.astimezone().strftime("%d %H") for b in kept if b.kind == "daily"] == ["13 02", "14 02", "15 14"]
    assert [b.created.astimezone().strftime("%d") for b in kept if b.kind == "full"] == ["14", "15"]  # weeks 2 and 3
    assert rescued == []  # no backup holds a store with history: the rules alone decide
    assert repository.retention_plan(items[:1], keep_daily=0, keep_weekly=0) == ([], [])  # never the last one


def test_retention_keeps_the_newest_backup_holding_the_store_and_keep_min_of_them():
    items = backups(*[f"daily 2024-01-{d:02d}T02:00" for d in range(1, 8)])
    for backup in items:
        backup.rows = 10 if backup.day.day <= 4 else 0  # the store was lost on the 5th
    doomed, rescued = repository.retention_plan(items, keep_daily=2, keep_weekly=1, keep_min=1)
    assert [b.day.day for b in rescued] == [4]
    assert sorted(b.day.day for b in doomed) == [1, 2, 3, 5]
    doomed, rescued = repository.retention_plan(items, keep_daily=2, keep_weekly=1, keep_min=3)
    assert [b.day.day for b in rescued] == [4, 3, 2] and sorted(b.day.day for b in doomed) == [1, 5]
