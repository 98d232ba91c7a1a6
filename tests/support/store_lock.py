"""Hold the SQLite store's write lock from another process, as a second writer would (tests only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HOLD = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("ROLLBACK")
"""


class StoreLock:
    """`with StoreLock(path) as held:` the lock is held (the holder said so) until release() or the block ends."""

    def __init__(self, path: Path):
        self.process = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)

    def __enter__(self) -> StoreLock:
        assert self.process.stdout.readline().strip() == "locked"
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def release(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write("\n")
            self.process.stdin.flush()
            self.process.wait(timeout=60)

    def __exit__(self, *exc) -> None:
        self.release()
