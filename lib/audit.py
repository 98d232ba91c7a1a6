"""The audit log: one JSON line per mutating command in evolution_history/audit.log (DESIGN §4).

Secrets are masked before the line is written; the file is only ever appended to.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from lib import log, paths
from lib.timeparse import iso


def audit(result: str, **details: Any) -> None:
    """Append one JSON line per mutating command to evolution_history/audit.log."""
    entry = {
        "time": iso(),
        "user": _user(),
        "host": socket.gethostname(),
        "command": log.mask_secrets(" ".join([Path(sys.argv[0]).name, *sys.argv[1:]])),
        "result": result,
        **details,
    }
    path = paths.audit_log()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = log.mask_secrets(json.dumps(entry, default=str, sort_keys=True)) + "\n"
    with open(path, "a", encoding="utf-8") as handle:  # O_APPEND: one write, one line
        handle.write(line)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
