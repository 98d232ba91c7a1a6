"""Human log lines of an evolution: its own evolution.log and the shared current.log."""

from __future__ import annotations

import threading

from lib import paths
from lib.log import mask_secrets
from lib.timeparse import iso


class EventLog:
    """Appends `<time> <LEVEL> [cycle C/N phase] message` lines; current.log also names the evolution."""

    def __init__(self, evolution_id: str, cycles: int):
        self.evolution_id = evolution_id
        self.cycles = cycles
        self.cycle = 0
        self.phase = ""
        self.own = paths.evolution_dir(evolution_id) / "evolution.log"
        self.own.parent.mkdir(parents=True, exist_ok=True)
        self.shared = paths.current_log()
        self._lock = threading.Lock()
        #: a stream that also gets each line (a container's stdout, which its log driver ships)
        self.echo = None

    def write(self, message: str, level: str = "INFO") -> None:
        where = f"[cycle {self.cycle}/{self.cycles} {self.phase}]".replace(" ]", "]")
        now = iso()
        text = mask_secrets(message)
        with self._lock:
            with open(self.own, "a", encoding="utf-8") as handle:
                handle.write(f"{now} {level} {where} {text}\n")
            with open(self.shared, "a", encoding="utf-8") as handle:
                handle.write(f"{now} {self.evolution_id} {level} {where} {text}\n")
            if self.echo:
                self.echo.write(f"{now} {level} {where} {text}\n")
                self.echo.flush()

    def info(self, message: str) -> None:
        self.write(message, "INFO")

    def warning(self, message: str) -> None:
        self.write(message, "WARNING")

    def error(self, message: str) -> None:
        self.write(message, "ERROR")
