"""Figures of issue 2: reading a big history, and --help of every script.

Builds a SQLite store with 100,000 evolutions (over the last year, a few still running)
and 1,000,000 tasks with executemany, then times as subprocesses (median of --runs):
  show_evolution_history.py --since yesterday   (target: under 0.5 s)
  show_active_evolutions.py                     (target: under 0.5 s)
and `--help` of every script in scripts/ (target: median under 0.3 s), checking with
`python -X importtime` that --help imports neither boto3 nor requests.

    python benchmarks/bench_history.py [--evolutions 100000] [--tasks-per-evolution 10] [--runs 5] [--store DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.store.sqlite import SQLiteStore  # noqa: E402

PHASES = ("research", "plan", "implement", "evaluate")
FINAL = ("succeeded", "succeeded", "succeeded", "succeeded", "failed", "stopped", "killed")


def build(history: Path, evolutions: int, tasks_per: int) -> float:
    """Fill history/state.db; returns the seconds it took."""
    started = time.monotonic()
    store = SQLiteStore.open(create=True, path=history / "state.db")
    now = datetime.now(UTC)
    rng = random.Random(7)
    evo_rows, task_rows = [], []
    for index in range(evolutions):
        begin = now - timedelta(seconds=rng.uniform(0, 365 * 86400))
        active = index < 3
        status = "running" if active else rng.choice(FINAL)
        evo_id = f"evo-{begin:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
        end = None if active else (begin + timedelta(minutes=rng.uniform(5, 240))).isoformat(timespec="seconds")
        evo_rows.append((evo_id, f"/srv/app/packages/target{index if active else index % 50}", "quality", 1,
                         status, 1000 + index if active else None, "bench", begin.isoformat(timespec="seconds"),
                         begin.isoformat(timespec="seconds"), end, 1, "implement" if active else None,
                         round(rng.uniform(0, 20), 2), None, None,
                         "exit-code: agent exited with 1" if status == "failed" else None, 0))
        trace = secrets.token_hex(16)
        for number in range(tasks_per):
            phase = PHASES[number % 4]
            moment = (begin + timedelta(minutes=number)).isoformat(timespec="seconds")
            failed = status == "failed" and number == tasks_per - 1
            error = f"exit-code: {phase}-agent exited with 1: boom" if failed else None
            task_rows.append((f"task-{begin:%Y%m%d%H%M%S}-{secrets.token_hex(4)}", evo_id, number // 4 + 1, phase,
                              f"{phase}-agent", "failed" if failed else "succeeded", 1, moment, moment, 60.0, 0.1,
                              error, trace, error or "ok"))
        if len(task_rows) >= 200_000:
            _flush(store, evo_rows, task_rows)
    _flush(store, evo_rows, task_rows)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.db.execute("ANALYZE")
    store.close()
    return time.monotonic() - started


def _flush(store: SQLiteStore, evo_rows: list, task_rows: list) -> None:
    with store.transaction():
        store.db.executemany(
            "INSERT INTO evolutions (id, target, focus, cycles, status, pid, host, started_at, heartbeat_at, "
            "finished_at, current_cycle, current_phase, cost_usd, pr_number, pr_url, error, dry_run) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", evo_rows)
        store.db.executemany(
            "INSERT INTO tasks (id, evolution_id, cycle, phase, agent, status, attempts, started_at, finished_at, "
            "duration_s, cost_usd, error, trace_id, output_summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            task_rows)
    evo_rows.clear()
    task_rows.clear()


def _newest_failure(history: Path) -> dict:
    """The newest failed task, with the spans the runner would have recorded for its evolution."""
    store = SQLiteStore.open(path=history / "state.db")
    try:
        failed = store.list_tasks(statuses=("failed",), limit=1)[0]
        if store.list_spans(failed["trace_id"]):
            return failed
        root, cycle = secrets.token_hex(8), secrets.token_hex(8)
        tasks = store.list_tasks(evolution_id=failed["evolution_id"])
        spans = [(root, None, f"evolution {failed['evolution_id']}", tasks[0], tasks[-1], {}),
                 (cycle, root, "cycle 1", tasks[0], tasks[-1], {"cycle": 1})]
        spans += [(secrets.token_hex(8), cycle, f"{t['phase']} {t['agent']}", t, t, {"task_id": t["id"]})
                  for t in tasks]
        for span_id, parent, name, first, last, attributes in spans:
            store.add_span({"trace_id": failed["trace_id"], "span_id": span_id, "parent_id": parent, "name": name,
                            "start": first["started_at"], "end": last["finished_at"], "status": "ok",
                            "attributes": {**attributes, "evolution_id": failed["evolution_id"]}})
        return failed
    finally:
        store.close()


def timed(argv: list[str], env: dict, runs: int) -> tuple[float, float, subprocess.CompletedProcess]:
    """Median wall time and median CPU time (user + system, robust on a busy machine) of `runs` runs."""
    walls, cpus, result = [], [], None
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=ROOT)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus), result


def heavy_imports(script: Path, env: dict) -> list[str]:
    """Top-level packages among boto3/botocore/requests that `--help` imports."""
    result = subprocess.run([sys.executable, "-X", "importtime", str(script), "--help"], env=env,
                            capture_output=True, text=True, cwd=ROOT)
    found = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:"):
            name = line.rsplit("|", 1)[-1].strip()
            if name.split(".")[0] in ("boto3", "botocore", "requests"):
                found.add(name.split(".")[0])
    return sorted(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evolutions", type=int, default=100_000)
    parser.add_argument("--tasks-per-evolution", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--store", type=Path, help="Keep the built store in this folder and reuse it next time.")
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="tdev-bench-") as folder:
        history = args.store or Path(folder) / "history"
        history.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TDEV_HISTORY_DIR": str(history)}
        if (history / "state.db").exists():
            print(f"store: reusing {history / 'state.db'}")
        else:
            seconds = build(history, args.evolutions, args.tasks_per_evolution)
            print(f"store: {args.evolutions:,} evolutions, {args.evolutions * args.tasks_per_evolution:,} tasks, "
                  f"{(history / 'state.db').stat().st_size / 1e6:.0f} MB, built in {seconds:.1f} s")
        startup, startup_cpu, _ = timed([python, str(ROOT / "scripts" / "show_evolution_history.py"), "--help"],
                                        env, args.runs)
        print(f"\nreading the history (median of {args.runs} subprocess runs, wall / cpu; target < 0.5 s; "
              f"start-up and imports alone: {startup:.3f} / {startup_cpu:.3f} s)")
        for argv in (["show_evolution_history.py", "--since", "yesterday"],
                     ["show_evolution_history.py", "--since", "yesterday", "--limit", "0"],
                     ["show_evolution_history.py", "--since", "7d", "--status", "failed", "--json"],
                     ["show_active_evolutions.py"]):
            median, cpu, result = timed([python, str(ROOT / "scripts" / argv[0]), *argv[1:]], env, args.runs)
            rows = max(0, len(result.stdout.splitlines()) - 2) if "--json" not in argv else result.stdout.count('"id"')
            verdict = "ok" if median < 0.5 and result.returncode == 0 else "SLOW" if median >= 0.5 else "FAILED"
            print(f"  {median:6.3f} / {cpu:5.3f} s  {verdict:6}  {rows:5} rows  {' '.join(argv)}")
        newest = _newest_failure(history)
        print(f"\ndiagnosing the newest failure (median of {args.runs} subprocess runs, wall / cpu)")
        for argv in (["analyze_failure.py", "--id", newest["evolution_id"]],
                     ["show_failure.py", "--id", newest["id"]],
                     ["trace_execution.py", "--trace-id", newest["trace_id"]],
                     ["generate_failure_report.py", "--id", newest["id"], "--output", f"{folder}/report.md", "--force"],
                     ["check_stuck_processes.py"]):
            median, cpu, result = timed([python, str(ROOT / "scripts" / argv[0]), *argv[1:]], env, args.runs)
            print(f"  {median:6.3f} / {cpu:5.3f} s  exit {result.returncode}  {argv[0]}")
        print(f"\n--help of every script (median of {args.runs}, wall / cpu; target < 0.3 s; "
              "boto3/requests must not load)")
        scripts = sorted(p for p in (ROOT / "scripts").glob("*.py") if not p.name.startswith("_"))
        worst, offenders = 0.0, []
        for script in scripts:
            median, cpu, result = timed([python, str(script), "--help"], env, args.runs)
            heavy = heavy_imports(script, env)
            worst = max(worst, median)
            if median >= 0.3 or heavy or result.returncode != 0:
                offenders.append(script.name)
            flag = "ok" if median < 0.3 and not heavy and result.returncode == 0 else "CHECK"
            extra = (f"  imports {', '.join(heavy)}" if heavy else "") + (
                "" if result.returncode == 0 else f"  exit {result.returncode}")
            print(f"  {median:6.3f} / {cpu:5.3f} s  {flag:5}  {script.name}{extra}")
        print(f"\n{len(scripts)} scripts, slowest --help {worst:.3f} s; "
              + (f"to look at: {', '.join(offenders)}" if offenders else "all within target"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
