"""The SQLite store: one file in evolution_history/, WAL, every change in a transaction."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from lib import log, paths
from lib.errors import ExternalError
from lib.store.base import (
    ACTIVE,
    EVOLUTION_FIELDS,
    FINAL,
    JSON_FIELDS,
    PATTERN_FIELDS,
    SPAN_FIELDS,
    TASK_FIELDS,
    Store,
    StoreLocked,
    round_sums,
    target_busy,
)

SCHEMA_VERSION = 5  # 2: evolutions_finished for the metrics' windows; 3: files_changed, tests, tokens;
# 4: pid_started_at; 5: this turn's columns (V5_COLUMNS)
#: Per attempt, SQLite waits this long for another writer (TDEV_STORE_BUSY_SECONDS); then the note, and again.
BUSY_SECONDS = 5.0
#: In all, a statement waits this long for a lock (TDEV_STORE_LOCK_WAIT) before its command gives up.
LOCK_WAIT_SECONDS = 600.0
_ACTIVE_SQL = ", ".join(f"'{status}'" for status in ACTIVE)
_FINAL_SQL = ", ".join(f"'{status}'" for status in FINAL)
# Aggregates (see Store.evolution_stats / task_stats): the same figures as the fallbacks.
_SECONDS = "(CAST(strftime('%s', e.finished_at) AS INTEGER) - CAST(strftime('%s', e.started_at) AS INTEGER))"
_CYCLES = "(CASE WHEN e.id IS NOT NULL THEN MAX(COALESCE(e.current_cycle, e.cycles, 1), 1) END)"
_GROUPABLE = {"evolutions": ("target", "focus", "status"), "tasks": ("phase", "agent", "status")}

# Schema 5 (DESIGN §4): an evolution's attempts, the TIMEOUT_SECONDS it started with (the stuck check judges by
# it), its budget and --agents registry, its executor and what a remote runner clones; a task's attempt
# number, cached tokens and model.
V5_COLUMNS = {"evolutions": ("attempts INTEGER", "max_attempts INTEGER", "timeout_seconds REAL", "budget_usd REAL",
                             "agents_file TEXT", "executor TEXT", "execution_arn TEXT", "remote_url TEXT",
                             "base_sha TEXT", "target_path TEXT"),
              "tasks": ("attempt INTEGER", "tokens_cached INTEGER", "model TEXT")}

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS evolutions (
    id TEXT PRIMARY KEY, target TEXT NOT NULL, focus TEXT, cycles INTEGER,
    status TEXT NOT NULL, pid INTEGER, host TEXT, started_at TEXT NOT NULL, heartbeat_at TEXT,
    finished_at TEXT, current_cycle INTEGER, current_phase TEXT, cost_usd REAL DEFAULT 0,
    pr_number INTEGER, pr_url TEXT, error TEXT, dry_run INTEGER DEFAULT 0,
    metrics_before TEXT, metrics_after TEXT, files_changed INTEGER, tests TEXT, pid_started_at TEXT,
    {", ".join(V5_COLUMNS["evolutions"])}
);
CREATE INDEX IF NOT EXISTS evolutions_started ON evolutions(started_at);
CREATE INDEX IF NOT EXISTS evolutions_status ON evolutions(status);
CREATE INDEX IF NOT EXISTS evolutions_finished ON evolutions(finished_at);
CREATE UNIQUE INDEX IF NOT EXISTS evolutions_one_active_per_target
    ON evolutions(target) WHERE status IN ({_ACTIVE_SQL});
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, evolution_id TEXT NOT NULL, cycle INTEGER, phase TEXT, agent TEXT,
    status TEXT NOT NULL, attempts INTEGER DEFAULT 0, started_at TEXT, finished_at TEXT,
    duration_s REAL, cost_usd REAL DEFAULT 0, error TEXT, trace_id TEXT, output_summary TEXT,
    tokens_in INTEGER, tokens_out INTEGER,
    {", ".join(V5_COLUMNS["tasks"])}
);
CREATE INDEX IF NOT EXISTS tasks_evolution ON tasks(evolution_id);
CREATE INDEX IF NOT EXISTS tasks_started ON tasks(started_at);
CREATE TABLE IF NOT EXISTS spans (
    span_id TEXT PRIMARY KEY, trace_id TEXT NOT NULL, parent_id TEXT, name TEXT,
    start TEXT, "end" TEXT, status TEXT, attributes TEXT
);
CREATE INDEX IF NOT EXISTS spans_trace ON spans(trace_id);
CREATE TABLE IF NOT EXISTS patterns (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, source TEXT, signature TEXT,
    created_at TEXT, hits INTEGER DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
PRAGMA user_version = {SCHEMA_VERSION};
"""

TABLE_FIELDS = {
    "evolutions": EVOLUTION_FIELDS,
    "tasks": TASK_FIELDS,
    "spans": SPAN_FIELDS,
    "patterns": PATTERN_FIELDS,
}


def db_path() -> Path:
    return paths.history_dir() / "state.db"


def _encode(field: str, value):
    if field in JSON_FIELDS and value is not None and not isinstance(value, str):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return int(value)
    return value


def _decode(row: sqlite3.Row) -> dict:
    record = dict(row)
    for field in JSON_FIELDS & record.keys():
        if isinstance(record[field], str):
            try:
                record[field] = json.loads(record[field])
            except ValueError:
                pass
    if "dry_run" in record and record["dry_run"] is not None:
        record["dry_run"] = bool(record["dry_run"])
    return record


def _where(*conditions: tuple[str, str, object]) -> tuple[str, list]:
    """A WHERE clause from (column, operator, value) triples; a missing value adds no condition."""
    clauses, args = [], []
    for column, operator, value in conditions:
        if not value:
            continue
        if operator == "IN":
            clauses.append(f"{column} IN ({', '.join('?' for _ in value)})")
            args.extend(value)
        else:
            clauses.append(f"{column} {operator} ?")
            args.append(value)
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), args


def _migrate(connection: sqlite3.Connection) -> None:
    """Bring an older store up to SCHEMA: new tables and indexes, then the columns added since."""
    added = {"evolutions": ("files_changed INTEGER", "tests TEXT", "pid_started_at TEXT"),
             "tasks": ("tokens_in INTEGER", "tokens_out INTEGER")}
    for table, columns in V5_COLUMNS.items():
        added[table] += columns
    for table, columns in added.items():
        present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        for column in columns:
            if present and column.split()[0] not in present:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    connection.executescript(SCHEMA)


def _seconds_from_env(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if value > 0 else default


def _locked(failure: sqlite3.OperationalError) -> bool:
    code = getattr(failure, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(failure) or "busy" in str(failure)


def lock_holders(path: Path) -> list[str]:
    """Other processes holding a write lock on the store or its WAL index (SQLite's POSIX locks, as
    /proc/locks lists them), as `pid N (name)`: whom a wait is for. Empty where that cannot be told."""
    files = set()
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(OSError):
            found = os.stat(name)
            files.add((os.major(found.st_dev), os.minor(found.st_dev), found.st_ino))
    pids = set()
    with contextlib.suppress(OSError), open("/proc/locks", encoding="ascii") as locks:
        for fields in map(str.split, locks):  # "1: POSIX ADVISORY WRITE 2611 08:01:123456 0 EOF"; "->" waits
            if len(fields) < 6 or fields[1] != "POSIX" or fields[3] != "WRITE":
                continue
            major, minor, inode = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) in files and int(fields[4]) != os.getpid():
                pids.add(int(fields[4]))
    holders = []
    for pid in sorted(pids):
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8") as comm:
                holders.append(f"pid {pid} ({comm.read().strip()})")
        except OSError:
            holders.append(f"pid {pid}")
    return holders


class _PatientConnection(sqlite3.Connection):
    """A connection whose statements wait out another writer's lock: SQLite's busy timeout per attempt, a note
    on stderr naming the file and its holders once the first attempt ran out, and an error line only after
    TDEV_STORE_LOCK_WAIT seconds (default 600), never `database is locked` from deep inside a command.
    Every statement outside a transaction is its own (autocommit), and a transaction takes its lock at
    BEGIN IMMEDIATE, so a statement that met the lock is safely run again."""

    store_path: Path | None = None

    def execute(self, sql, parameters=(), /):
        started, noted = time.monotonic(), False
        while True:
            try:
                return super().execute(sql, parameters)
            except sqlite3.OperationalError as failure:
                if not _locked(failure) or self.in_transaction:
                    raise
                waited, limit = time.monotonic() - started, _seconds_from_env("TDEV_STORE_LOCK_WAIT", LOCK_WAIT_SECONDS)
                holders = ", ".join(lock_holders(self.store_path)) if self.store_path else ""
                if waited >= limit:
                    raise StoreLocked(f"state store {self.store_path} stayed locked for {waited:.0f} s by "
                                      f"{holders or 'another process'}",
                                      "end or wait for the process holding it, then run the command again") from None
                if not noted:
                    noted = True
                    log.note(f"state store {self.store_path} is locked by {holders or 'another process'}; "
                             f"waiting (up to {limit:g} s)")




def _quote(column: str) -> str:
    return f'"{column}"'


class SQLiteStore(Store):
    backend = "sqlite"

    def __init__(self, connection: sqlite3.Connection, path: Path | None, exists: bool = True):
        self.db = connection
        self.path = path
        self.exists = exists

    @staticmethod
    def file_exists() -> bool:
        return db_path().exists()

    @classmethod
    def open(cls, create: bool = False, path: Path | None = None, missing_note: str | None = None,
             before_create: Callable[[], None] | None = None) -> SQLiteStore:
        """missing_note: the note for stderr when the file is missing (default: none yet, run init); with create,
        before_create (the lost-store refusal, DESIGN §8) has its say before a missing file is made."""
        path = path or db_path()
        if not path.exists():
            if not create:
                note = missing_note or f"no evolution history yet at {path} (run python scripts/init_evolution.py)"
                log.note(note)
                return cls.in_memory(exists=False)
            if before_create is not None:
                before_create()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            busy = _seconds_from_env("TDEV_STORE_BUSY_SECONDS", BUSY_SECONDS)
            connection = sqlite3.connect(path, timeout=busy, isolation_level=None, check_same_thread=False,
                                         factory=_PatientConnection)
            connection.store_path = path
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(f"PRAGMA busy_timeout={int(busy * 1000)}")
            if connection.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                _migrate(connection)
        except sqlite3.DatabaseError as broken:
            raise ExternalError(f"state store {path} cannot be opened: {broken}",
                                "restore it: python scripts/restore.py --date <day> --confirm") from None
        return cls(connection, path)

    @classmethod
    def in_memory(cls, exists: bool = True) -> SQLiteStore:
        connection = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        connection.row_factory = sqlite3.Row
        connection.executescript(SCHEMA)
        return cls(connection, None, exists=exists)

    # ---- helpers ------------------------------------------------------------------
    def _insert(self, table: str, record: dict, replace: bool = False) -> None:
        fields = [f for f in TABLE_FIELDS[table] if f in record]
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        sql = (f"{verb} INTO {table} ({', '.join(map(_quote, fields))}) "
               f"VALUES ({', '.join('?' for _ in fields)})")
        self.db.execute(sql, [_encode(f, record[f]) for f in fields])

    def _update(self, table: str, key: str, key_value: str, fields: dict, where: str = "", args=()) -> int:
        unknown = set(fields) - set(TABLE_FIELDS[table])
        if unknown:
            raise ValueError(f"unknown {table} fields: {sorted(unknown)}")
        assignments = ", ".join(f"{_quote(f)} = ?" for f in fields)
        cursor = self.db.execute(
            f"UPDATE {table} SET {assignments} WHERE {key} = ?{where}",  # noqa: S608 - names come from TABLE_FIELDS
            [*(_encode(f, v) for f, v in fields.items()), key_value, *args],
        )
        return cursor.rowcount

    def _one(self, sql: str, args=()) -> dict | None:
        row = self.db.execute(sql, args).fetchone()
        return _decode(row) if row else None

    def _all(self, sql: str, args=()) -> list[dict]:
        return [_decode(row) for row in self.db.execute(sql, args)]

    # ---- evolutions -----------------------------------------------------------------
    def create_evolution(self, record: dict) -> dict:
        try:
            self._insert("evolutions", record)
        except sqlite3.IntegrityError:
            active = self._one(
                f"SELECT id FROM evolutions WHERE target = ? AND status IN ({_ACTIVE_SQL})", (record["target"],)  # noqa: S608 - names come from TABLE_FIELDS
            )
            raise target_busy(record["target"], active["id"] if active else None) from None
        return self.get_evolution(record["id"])

    def get_evolution(self, evolution_id: str) -> dict | None:
        return self._one("SELECT * FROM evolutions WHERE id = ?", (evolution_id,))

    def update_evolution(self, evolution_id: str, fields: dict, expect_status: tuple | None = None) -> bool:
        if expect_status:
            marks = ", ".join("?" for _ in expect_status)
            return self._update("evolutions", "id", evolution_id, fields, f" AND status IN ({marks})",
                                tuple(expect_status)) == 1
        return self._update("evolutions", "id", evolution_id, fields) == 1

    def list_evolutions(self, since=None, until=None, statuses=None, target=None, limit=None) -> list[dict]:
        where, args = _where(("started_at", ">=", since), ("started_at", "<", until), ("status", "IN", statuses),
                             ("target", "=", target))
        tail = f" LIMIT {int(limit)}" if limit else ""
        # Active evolutions are few (one per target): find them by status and sort them, rather than let
        # the planner walk the whole started_at index (ANALYZE averages make status look unselective).
        order = "+started_at" if statuses and not since and set(statuses) <= set(ACTIVE) else "started_at"
        return self._all(f"SELECT * FROM evolutions{where} ORDER BY {order} DESC{tail}", args)  # noqa: S608 - names come from TABLE_FIELDS

    # ---- tasks ------------------------------------------------------------------------
    def create_task(self, record: dict) -> dict:
        self._insert("tasks", record)
        return self.get_task(record["id"])

    def update_task(self, task_id: str, fields: dict) -> None:
        self._update("tasks", "id", task_id, fields)

    def get_task(self, task_id: str) -> dict | None:
        return self._one("SELECT * FROM tasks WHERE id = ?", (task_id,))

    def list_tasks(self, evolution_id=None, since=None, statuses=None, limit=None) -> list[dict]:
        where, args = _where(("evolution_id", "=", evolution_id), ("started_at", ">=", since),
                             ("status", "IN", statuses))
        order = "ASC" if evolution_id else "DESC"
        tail = f" LIMIT {int(limit)}" if limit else ""
        return self._all(f"SELECT * FROM tasks{where} ORDER BY started_at {order}, rowid {order}{tail}", args)  # noqa: S608 - names come from TABLE_FIELDS

    def task_totals(self, evolution_ids: list[str]) -> dict[str, dict]:
        """One grouped query for the whole page of a history."""
        keys = ("tokens_in", "tokens_out", "tokens_cached", "implement_calls")
        totals = {i: dict.fromkeys(keys, 0) for i in evolution_ids}
        for start in range(0, len(evolution_ids), 500):  # SQLite's bound-parameter limit
            chunk = evolution_ids[start:start + 500]
            rows = self.db.execute(
                "SELECT evolution_id, SUM(COALESCE(tokens_in, 0)), SUM(COALESCE(tokens_out, 0)), "  # noqa: S608
                "SUM(COALESCE(tokens_cached, 0)), SUM(phase = 'implement') "
                f"FROM tasks WHERE evolution_id IN ({', '.join('?' * len(chunk))}) GROUP BY evolution_id", chunk)
            for evolution_id, *sums in rows:
                totals[evolution_id] = {key: value or 0 for key, value in zip(keys, sums, strict=True)}
        return totals

    # ---- spans and patterns ---------------------------------------------------------
    def add_span(self, record: dict) -> None:
        self._insert("spans", record, replace=True)

    def list_spans(self, trace_id: str) -> list[dict]:
        return self._all("SELECT * FROM spans WHERE trace_id = ? ORDER BY start, rowid", (trace_id,))

    def put_pattern(self, record: dict) -> None:
        self._insert("patterns", record, replace=True)

    def list_patterns(self, kind=None) -> list[dict]:
        if kind:
            return self._all("SELECT * FROM patterns WHERE kind = ? ORDER BY created_at", (kind,))
        return self._all("SELECT * FROM patterns ORDER BY created_at")

    # ---- meta -------------------------------------------------------------------------
    def get_meta(self, key: str, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def delete_meta(self, key: str) -> None:
        self.db.execute("DELETE FROM meta WHERE key = ?", (key,))

    # ---- export / import -------------------------------------------------------------
    _KIND_TABLES = {"evolution": "evolutions", "task": "tasks", "span": "spans", "pattern": "patterns"}

    def export_records(self):
        for kind, table in self._KIND_TABLES.items():
            for row in self.db.execute(f"SELECT * FROM {table} ORDER BY rowid"):  # noqa: S608 - names come from TABLE_FIELDS
                yield kind, _decode(row)
        for key, value in self.db.execute("SELECT key, value FROM meta ORDER BY key"):
            yield "meta", {"key": key, "value": json.loads(value)}

    def import_records(self, records) -> int:
        count = 0
        with self.transaction():
            for kind, record in records:
                if kind == "meta":
                    self.set_meta(record["key"], record["value"])
                else:
                    self._insert(self._KIND_TABLES[kind], record, replace=True)
                count += 1
        return count

    # ---- aggregates (one SQL statement each; windows joined as a VALUES table) -----------
    @staticmethod
    def _windows(windows: list[tuple[str, str]]) -> tuple[str, list]:
        if not windows:
            raise ValueError("at least one window is needed")
        values = ", ".join("(?, ?, ?)" for _ in windows)
        args = [value for index, (lo, hi) in enumerate(windows) for value in (index, lo, hi)]
        return f"windows(w, lo, hi) AS (VALUES {values})", args

    @staticmethod
    def _grouping(table: str, fields) -> tuple[str, str]:
        """The group columns as `, column AS field...` for a SELECT and `windows.w, column...` for a
        GROUP BY or PARTITION BY: every aggregate is per window, then per group."""
        unknown = set(fields) - set(_GROUPABLE[table])
        if unknown:
            raise ValueError(f"cannot group {table} by {sorted(unknown)}")
        columns = [f"{'e' if table == 'evolutions' else 't'}.{_quote(f)}" for f in fields]
        select = "".join(f", {column} AS {_quote(field)}" for column, field in zip(columns, fields, strict=True))
        return select, "windows.w" + "".join(f", {column}" for column in columns)

    def evolution_stats(self, windows, group_by=None, cycle_seconds_limit=None, cycle_cost_limit=None) -> list[dict]:
        cte, args = self._windows(windows)
        select_groups, by = self._grouping("evolutions", [group_by] if group_by else [])
        per_status = "".join(f", COALESCE(SUM(e.status = '{s}'), 0) AS {s}" for s in FINAL)
        sql = (
            f"WITH {cte}, lim(sec, cost) AS (SELECT ?, ?) "  # noqa: S608 - names come from _GROUPABLE, values are bound
            f"SELECT windows.w AS window{select_groups}, COUNT(e.id) AS finished{per_status}, "
            f"COALESCE(SUM({_CYCLES}), 0) AS cycles, COALESCE(SUM({_SECONDS}), 0) AS seconds, "
            "COALESCE(SUM(e.cost_usd), 0.0) AS cost_usd, "
            f"COALESCE(SUM({_SECONDS} > lim.sec * {_CYCLES}), 0) AS over_seconds, "
            f"COALESCE(SUM(MAX(0, {_SECONDS} - lim.sec * {_CYCLES})), 0) AS excess_seconds, "
            f"COALESCE(SUM(COALESCE(e.cost_usd, 0) > lim.cost * {_CYCLES}), 0) AS over_cost "
            "FROM windows CROSS JOIN lim LEFT JOIN evolutions e "
            "ON e.finished_at >= windows.lo AND e.finished_at < windows.hi "
            f"AND e.status IN ({_FINAL_SQL}) GROUP BY {by}{' HAVING COUNT(e.id) > 0' if group_by else ''} ORDER BY {by}"
        )
        rows = self.db.execute(sql, [*args, cycle_seconds_limit, cycle_cost_limit])
        return [round_sums(dict(row)) for row in rows]

    def task_stats(self, windows, group_by=(), percentiles=()) -> list[dict]:
        cte, args = self._windows(windows)
        keys, by = self._grouping("tasks", group_by)
        sql = (
            f"WITH {cte} SELECT windows.w AS window{keys}, COUNT(t.id) AS tasks, "  # noqa: S608 - names come from _GROUPABLE, values are bound
            "COALESCE(SUM(t.status = 'failed'), 0) AS failed, COALESCE(SUM(t.cost_usd), 0.0) AS cost_usd, "
            "COALESCE(SUM(t.duration_s), 0) AS seconds "
            "FROM windows LEFT JOIN tasks t ON t.started_at >= windows.lo AND t.started_at < windows.hi "
            f"GROUP BY {by}{' HAVING COUNT(t.id) > 0' if group_by else ''} ORDER BY {by}"
        )
        rows = [round_sums(dict(row)) for row in self.db.execute(sql, args)]
        if percentiles:
            ranks = self._task_percentiles(cte, args, keys, by, group_by, percentiles)
            for row in rows:
                found = ranks.get((row["window"], *(row[f] for f in group_by)), {})
                row.update({f"p{p}": found.get(f"p{p}") for p in percentiles})
        return rows

    def _task_percentiles(self, cte, args, keys, partition, group_by, percentiles) -> dict[tuple, dict]:
        """Nearest-rank percentiles of duration_s per window and group, ranked by a window function."""
        for p in percentiles:
            if not (isinstance(p, int) and 0 < p <= 100):
                raise ValueError(f"percentile {p!r} is not an integer in 1..100")
        picks = ", ".join(f"MAX(CASE WHEN rn = MAX(1, ({p} * n + 99) / 100) THEN d END) AS p{p}" for p in percentiles)
        outer = "w" + "".join(f", {_quote(field)}" for field in group_by)
        sql = (
            f"WITH {cte}, ranked AS (SELECT windows.w AS w{keys}, t.duration_s AS d, "  # noqa: S608 - names come from _GROUPABLE, values are bound
            f"ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY t.duration_s) AS rn, "
            f"COUNT(*) OVER (PARTITION BY {partition}) AS n "
            "FROM windows JOIN tasks t ON t.started_at >= windows.lo AND t.started_at < windows.hi "
            f"WHERE t.duration_s IS NOT NULL) SELECT {outer}, {picks} FROM ranked GROUP BY {outer}"
        )
        found = {}
        for row in self.db.execute(sql, args):
            found[tuple(row[: 1 + len(group_by)])] = dict(row)
        return found

    def longest_evolutions(self, start: str, end: str, limit: int = 5) -> list[dict]:
        sql = (f"SELECT e.*, {_SECONDS} AS seconds FROM evolutions e WHERE e.finished_at >= ? AND e.finished_at < ? "  # noqa: S608 - fixed SQL, values are bound
               f"AND e.status IN ({_FINAL_SQL}) ORDER BY seconds DESC, e.id LIMIT ?")
        return self._all(sql, (start, end, int(limit)))

    # ---- housekeeping -------------------------------------------------------------------
    def counts(self) -> dict:
        return {table: self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608 - names come from TABLE_FIELDS
                for table in (*TABLE_FIELDS, "meta")}

    def check(self) -> str:
        try:
            result = self.db.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as broken:
            return str(broken)
        return "ok" if result == "ok" else result

    def compact(self) -> None:
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.execute("VACUUM")
        self.db.execute("PRAGMA optimize")

    def transaction(self):
        """BEGIN IMMEDIATE ... COMMIT as a context manager, for multi-row changes."""
        return _Transaction(self.db)

    def close(self) -> None:
        self.db.close()


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, kind, value, trace):
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
        return False
