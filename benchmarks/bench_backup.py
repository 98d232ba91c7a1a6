"""Backup and restore figures of issue 5, side by side with GNU tar in one run.

On a generated evolution history (mixed JSON logs and artifacts, somewhat compressible):
  - backup throughput of `scripts/backup.py --full` against `tar --zstd -cf` of the same tree;
  - restore (every checksum verified) and restore + verify_restore.py against `tar --zstd -xf`;
  - peak RSS of each subprocess (os.wait4 gives the rusage of that child alone).

Usage:
    python benchmarks/bench_backup.py [--size-mb 512] [--rounds 5] [--work DIR]

Each round runs tar and ours back to back; besides the medians of each step, the median of the
per-round ratios (paired) is reported, which a busy shared machine disturbs less.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
MB = 1 << 20

import seed_store  # noqa: E402 - beside this file


def _vocabulary(rng: random.Random) -> list[str]:
    words = ["research", "plan", "implement", "evaluate", "gate", "agent", "refactor", "docstring", "complexity",
             "packages/agents", "cycle", "phase", "ok", "error", "timeout", "retry", "pull request", "metrics"]
    return words + [f"{rng.getrandbits(64):016x}" for _ in range(400)] + [str(rng.random()) for _ in range(400)]


def _log_lines(rng: random.Random, words: list[str], count: int) -> list[str]:
    lines = []
    for _ in range(count):
        fields = {"time": f"2024-01-15T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
                  "level": rng.choice(("INFO", "DEBUG", "WARNING", "ERROR")),
                  "task": f"task-{rng.getrandbits(48):012x}",
                  "message": " ".join(rng.choices(words, k=rng.randrange(6, 24))),
                  "cost_usd": round(rng.random(), 6), "tokens": rng.randrange(100000)}
        lines.append(json.dumps(fields))
    return lines


def generate_history(target: Path, size_mb: int, seed: int = 5) -> int:
    """An evolution history of about size_mb: logs (JSON lines), task artifacts (JSON), binary blobs."""
    rng = random.Random(seed)
    words = _vocabulary(rng)
    pool = _log_lines(rng, words, 20000)
    total, goal, index = 0, size_mb * MB, 0
    target.mkdir(parents=True, exist_ok=True)
    (target / "current.log").write_text("\n".join(pool[:2000]) + "\n")
    while total < goal:
        evolution = target / f"evo-20240115{index:06d}-{rng.getrandbits(24):06x}"
        evolution.mkdir()
        log_text = "\n".join(rng.choices(pool, k=rng.randrange(2000, 12000))) + "\n"
        (evolution / "evolution.log").write_text(log_text)
        total += len(log_text)
        for task in range(rng.randrange(8, 24)):
            document = {"task": task, "output": rng.choices(pool, k=rng.randrange(10, 200)),
                        "metrics": {w: rng.random() for w in rng.sample(words, 40)}}
            text = json.dumps(document, indent=1)
            (evolution / f"task-{task:03d}.json").write_text(text)
            total += len(text)
        blob = os.urandom(rng.randrange(64, 512) * 1024)
        (evolution / "snapshot.bin").write_bytes(blob)
        total += len(blob)
        index += 1
    return total


def run_measured(command: list[str], env: dict | None = None,
                 cwd: Path | None = None) -> tuple[float, int, int, float]:
    """Run a command after a sync; return (seconds, exit code, peak RSS in MB, CPU seconds) of that child."""
    subprocess.run(["sync"], check=False)
    time.sleep(1)
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)  # the rusage of this child (and what it waited for)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    errors = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    if code:
        sys.stderr.write(errors)
    return seconds, code, usage.ru_maxrss // 1024, usage.ru_utime + usage.ru_stime


def tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def installation_env(work: Path, home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TDEV_", "EVOLUTION_"))}
    env.update(TDEV_HISTORY_DIR=str(home / "evolution_history"), TDEV_CONFIG_DIR=str(home / "config"),
               TDEV_LOG_DIR=str(home / "logs"), TDEV_BACKUP_DIR=str(work / "backups"),
               TDEV_MCP_CONFIG=str(home / "claude.mcp.json"), AWS_CONFIG_FILE=str(work / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(work / "none"), AWS_EC2_METADATA_DISABLED="true")
    return env


def one_round(work: Path, home: Path) -> dict:
    """tar and ours, side by side: create, then extract (ours into a fresh, empty installation)."""
    source_env, restored = installation_env(work, home), work / "restored"
    restore_env = installation_env(work, restored)
    tar_archive, tar_out = work / "tar.tar.zst", work / "tar-out"
    for path in (work / "backups", restored, tar_out):
        shutil.rmtree(path, ignore_errors=True)
    tar_archive.unlink(missing_ok=True)
    tar_out.mkdir()
    restored.mkdir()
    scripts = ROOT / "scripts"
    return {
        "tar_create": run_measured(["tar", "--zstd", "-cf", str(tar_archive), "-C", str(home), "evolution_history"]),
        "backup": run_measured([sys.executable, str(scripts / "backup.py"), "--full", "--no-s3"], source_env, ROOT),
        "tar_extract": run_measured(["tar", "--zstd", "-xf", str(tar_archive), "-C", str(tar_out)]),
        "restore": run_measured([sys.executable, str(scripts / "restore.py"), "--date", "today", "--confirm",
                                 "--source", "local"], restore_env, ROOT),
        "verify": run_measured([sys.executable, str(scripts / "verify_restore.py")], restore_env, ROOT),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians are reported")
    parser.add_argument("--work", type=Path, default=None, help="where to build the tree (kept between runs)")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="tdev-bench-backup-"))
    home = work / "home"
    history = home / "evolution_history"
    if not history.exists():
        print(f"generating {args.size_mb} MB of evolution history in {history} ...", file=sys.stderr)
        generate_history(history, args.size_mb)
    if not (history / "state.db").exists():  # a real store: backup refuses a history whose store is missing
        seed_store.build(history, evolutions=sum(1 for path in history.glob("evo-*")), tasks_per_evolution=10)
    if not (home / "config").exists():
        shutil.copytree(ROOT / "config", home / "config")
    size = tree_bytes(history)
    subprocess.run(["tar", "-cf", "/dev/null", "-C", str(home), "evolution_history"], check=True)  # warm cache
    # Bytecode as an installation has it (pip compiles on install); without it, PYTHONDONTWRITEBYTECODE in
    # the environment would make every measured run compile lib/ from source.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "lib", "scripts"], cwd=ROOT, check=True)

    rounds = [one_round(work, home) for _ in range(args.rounds)]
    ours = next((work / "backups").rglob("*.tar.zst"), None)
    if ours is None:
        print("error: backup.py made no archive (its error is above)", file=sys.stderr)
        return 1
    names = list(rounds[0])
    median = {name: statistics.median(r[name][0] for r in rounds) for name in names}
    cpu = {name: statistics.median(r[name][3] for r in rounds) for name in names}
    peak = {name: max(r[name][2] for r in rounds) for name in names}
    failed = sorted({name for r in rounds for name in names if r[name][1]})
    mb = size / MB
    print(f"tree: {mb:.0f} MB, {sum(1 for _ in history.rglob('*'))} entries; archives: tar "
          f"{(work / 'tar.tar.zst').stat().st_size / MB:.0f} MB, ours {ours.stat().st_size / MB:.0f} MB; "
          f"{args.rounds} rounds, {os.cpu_count()} CPUs")
    print(f"{'step':<12} {'median s':>9} {'MB/s':>7} {'CPU s':>6} {'all rounds (s)':>30} {'peak RSS MB':>12}")
    for name in names:
        runs = " ".join(f"{r[name][0]:.2f}" for r in rounds)
        print(f"{name:<12} {median[name]:9.2f} {mb / median[name]:7.0f} {cpu[name]:6.2f} {runs:>30} "
              f"{peak[name]:12d}")
    paired = {ours: statistics.median(r[theirs][0] / r[ours][0] for r in rounds)
              for ours, theirs in (("backup", "tar_create"), ("restore", "tar_extract"))}
    print(f"backup throughput / tar --zstd -cf throughput: {median['tar_create'] / median['backup']:.2f} "
          f"(paired: {paired['backup']:.2f}; goal >= 1.00)")
    print(f"tar --zstd -xf time / restore time: {median['tar_extract'] / median['restore']:.2f} "
          f"(paired: {paired['restore']:.2f}; goal >= 1.00; restore verifies every member's SHA-256 before the swap)")
    print(f"tar --zstd -xf time / (restore + verify_restore.py): "
          f"{median['tar_extract'] / (median['restore'] + median['verify']):.2f}")
    print(f"CPU seconds (median), ours / tar: backup {cpu['backup'] / cpu['tar_create']:.2f}, "
          f"restore {cpu['restore'] / cpu['tar_extract']:.2f} (a shared machine shows in wall time, less in CPU)")
    print(f"peak RSS: backup {peak['backup']} MB, restore {peak['restore']} MB, verify {peak['verify']} MB "
          "(goal < 150 MB)")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
