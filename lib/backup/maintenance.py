"""The runbook's Friday line: full backup, cleanup, gc, log archive, pattern update.

Each step is its own runbook script run as `python scripts/<x>.py` from the project
root, so a step behaves exactly as when an operator types it. Every step runs even when
an earlier one failed (a failed cleanup must not cost the week's backup report), and
each is reported with its exit code and last line of output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from lib import log, paths


def steps() -> list[tuple[str, list[str]]]:
    """--verbose: a step's output is captured (no terminal), and its last line is the row's detail."""
    return [
        ("full backup", ["backup.py", "--full", "--verbose"]),
        ("cleanup", ["cleanup.py", "--temp", "--older-than", "24h", "--verbose"]),
        ("gc", ["gc.py", "--verbose"]),
        ("archive logs", ["archive_logs.py", "--older-than", "30d", "--verbose"]),
        ("update patterns", ["update_patterns.py", "--source", f"{paths.history_dir()}/", "--verbose"]),
    ]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return log.mask_secrets(lines[-1]) if lines else ""


def run_step(name: str, command: list[str], dry_run: bool, timeout: float) -> dict:
    script = paths.root() / "scripts" / command[0]
    row = {"step": name, "command": f"python scripts/{' '.join(command)}", "status": "failed", "exit": None,
           "seconds": 0.0, "detail": ""}
    if not script.is_file():
        row["detail"] = "script missing"
        return row
    env = {**os.environ, **({"EVOLUTION_DRY_RUN": "true"} if dry_run else {})}
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, str(script), *command[1:]], cwd=paths.root(), env=env,
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        row.update(seconds=round(time.monotonic() - started, 1), detail=f"timed out after {timeout:g} s")
        return row
    row.update(exit=done.returncode, seconds=round(time.monotonic() - started, 1),
               status="ok" if done.returncode == 0 else "failed",
               detail=_last_line(done.stderr if done.returncode else done.stdout) or _last_line(done.stderr))
    return row


def run(dry_run: bool, timeout: float) -> list[dict]:
    return [run_step(name, command, dry_run, timeout) for name, command in steps()]
