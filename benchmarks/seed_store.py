"""Build a large SQLite evolution store quickly (executemany in one transaction), for benchmarks.

Evolutions are spread over the last `days` days, ten tasks each, a few percent failed, and
the newest few are active. Usage: python benchmarks/seed_store.py DIR [--evolutions N]
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.store.sqlite import SQLiteStore  # noqa: E402
from lib.timeparse import iso, utcnow  # noqa: E402

PHASES = ("research", "plan", "implement", "evaluate")


def build(history_dir: Path, evolutions: int = 100_000, tasks_per_evolution: int = 10, days: int = 365,
          seed: int = 7) -> Path:
    """Create history_dir/state.db with the given volume; returns its path."""
    rng = random.Random(seed)
    history_dir.mkdir(parents=True, exist_ok=True)
    path = history_dir / "state.db"
    path.unlink(missing_ok=True)
    store = SQLiteStore.open(create=True, path=path)
    now = utcnow()
    step = timedelta(days=days) / evolutions
    evolution_rows, task_rows = [], []
    for number in range(evolutions):
        started = now - step * (evolutions - number)
        finished = started + timedelta(minutes=rng.randrange(5, 400))
        status = rng.choices(("succeeded", "failed", "stopped"), (88, 10, 2))[0]
        evo_id = f"evo-{started:%Y%m%d%H%M%S}-{number:06x}"
        merged = rng.random() < 0.6
        evolution_rows.append((evo_id, f"/srv/repos/target-{number % 20}", "quality", 1, status, None, "bench",
                               iso(started), iso(finished), iso(finished), 1, None, round(rng.random() * 12, 4),
                               number if merged else None, None, None if status == "succeeded" else "exit-code: x", 0))
        for index in range(tasks_per_evolution):
            phase = PHASES[index % 4]
            failed = status == "failed" and index == tasks_per_evolution - 1
            task_rows.append((f"task-{number:06x}-{index:02d}", evo_id, 1 + index // 4, phase, f"{phase}-agent",
                              "failed" if failed else "succeeded", 1, iso(started + timedelta(seconds=index * 60)),
                              iso(started + timedelta(seconds=index * 60 + 30)), rng.random() * 600,
                              round(rng.random(), 4), "timeout: slow" if failed else None, f"{number:032x}"))
    with store.transaction():
        store.db.executemany(
            "INSERT INTO evolutions (id, target, focus, cycles, status, pid, host, started_at, heartbeat_at, "
            "finished_at, current_cycle, current_phase, cost_usd, pr_number, pr_url, error, dry_run) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", evolution_rows)
        store.db.executemany(
            "INSERT INTO tasks (id, evolution_id, cycle, phase, agent, status, attempts, started_at, finished_at, "
            "duration_s, cost_usd, error, trace_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", task_rows)
    store.db.execute("ANALYZE")
    store.close()
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("history_dir", type=Path)
    parser.add_argument("--evolutions", type=int, default=100_000)
    args = parser.parse_args()
    print(build(args.history_dir, args.evolutions))
