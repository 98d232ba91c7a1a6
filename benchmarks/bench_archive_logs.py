"""Figure: archive_logs.py --older-than 30d on 1 GB of logs against a moto server, peak RSS.

Writes log files (text with timestamps, levels and ids, compressing like real logs),
ages them past 30 days, runs the script as an operator would and reads the peak RSS of
that process (getrusage of the waited child; the moto server is waited later). A run at
1/8 of the size shows that memory does not grow with the data (streamed, never loaded).

    python benchmarks/bench_archive_logs.py [--megabytes 1024] [--files 8]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_agent_status import ROOT, free_port, start_moto  # noqa: E402

BLOCK = 4 << 20
LEVELS = ("INFO", "INFO", "INFO", "DEBUG", "WARNING", "ERROR")
PHASES = ("research", "plan", "implement", "evaluate")
MESSAGES = ("agent call finished", "gate passed", "retrying after throttle", "wrote artifact")


def log_blocks(count: int, seed: int = 7) -> list[bytes]:
    """Distinct 4 MB blocks of log lines; files cycle through them (repeats lie beyond zstd's window)."""
    rng = random.Random(seed)
    blocks = []
    for _ in range(count):
        lines, size = [], 0
        while size < BLOCK:
            line = (f"2024-01-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
                    f"{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z {rng.choice(LEVELS)} "
                    f"evo-{rng.getrandbits(40):010x} task-{rng.getrandbits(24):06x} phase={rng.choice(PHASES)} "
                    f"duration_ms={rng.randint(1, 90000)} tokens={rng.randint(0, 8000)} "
                    f"msg=\"{rng.choice(MESSAGES)}\"\n")
            lines.append(line)
            size += len(line)
        blocks.append("".join(lines).encode())
    return blocks


def write_logs(folder: Path, megabytes: int, files: int, blocks: list[bytes]) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    per_file = megabytes * (1 << 20) // files
    old = time.time() - 40 * 86400
    total = 0
    for index in range(files):
        path = folder / f"app-{index}.log"
        with open(path, "wb") as out:
            written, turn = 0, index
            while written < per_file:
                block = blocks[turn % len(blocks)][: per_file - written]
                out.write(block)
                written += len(block)
                turn += 1
        os.utime(path, (old, old))
        total += written
    return total


def run_once(megabytes: int, files: int, blocks: list[bytes], endpoint: str) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    try:
        size = write_logs(work / "logs", megabytes, files, blocks)
        env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
               "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
               "TDEV_LOG_DIR": str(work / "logs"), "TDEV_BACKUP_DIR": str(work / "backups"),
               "TDEV_HISTORY_DIR": str(work / "history"), "TDEV_BACKUP_BUCKET": f"bench-{megabytes}",
               "TDEV_CONFIG_DIR": str(ROOT / "config")}
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "archive_logs.py"), "--older-than", "30d",
                                  "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = child.communicate()
        wall = time.perf_counter() - started
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if child.returncode:
            raise SystemExit(f"archive_logs.py failed: {err.decode()}")
        rows = json.loads(out)["files"]
        compressed = sum(r["compressed"] for r in rows)
        return {"megabytes": round(size / (1 << 20)), "files": len(rows), "all_archived":
                all(r["result"] == "archived" for r in rows) and not any((work / "logs").iterdir()),
                "compressed_mb": round(compressed / (1 << 20), 1), "ratio": round(size / compressed, 1),
                "wall_s": round(wall, 1), "throughput_mb_s": round(size / (1 << 20) / wall, 1),
                "peak_rss_mb_so_far": round(peak_kb / 1024, 1)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--files", type=int, default=8)
    options = parser.parse_args()
    blocks = log_blocks(16)
    port = free_port()
    server = start_moto(port)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        small = run_once(options.megabytes // 8, options.files, blocks, endpoint)  # ru_maxrss: max so far
        large = run_once(options.megabytes, options.files, blocks, endpoint)
    finally:
        server.terminate()
        server.wait()
    print(json.dumps({"small": small, "large": large,
                      "peak_rss_growth_mb": round(large["peak_rss_mb_so_far"] - small["peak_rss_mb_so_far"], 1)},
                     indent=2))


if __name__ == "__main__":
    main()
