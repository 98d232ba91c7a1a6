"""Run one long-running MCP server detached and copy its output into the MCP logs.

    python -m lib.adapters.mcp_logpump NAME LOG_DIR CWD -- COMMAND [ARG ...]

restart_mcp.py starts this in a new session, so it leads the process group that the
server joins: ending the group ends both. Each output line goes to LOG_DIR/NAME.log and,
prefixed with time and name, to LOG_DIR/server.log (DESIGN §8). Exits with the server.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
from pathlib import Path

from lib.adapters.mcp_client import ServerLog


def _copy(stream, log) -> None:
    for line in iter(stream.readline, b""):
        log.stderr(line.decode("utf-8", "replace"))


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[3] != "--":  # split by hand: the server's own arguments may hold a "--" too
        argparse.ArgumentParser(prog="python -m lib.adapters.mcp_logpump",
                                usage="%(prog)s NAME LOG_DIR CWD -- COMMAND [ARG ...]") \
            .error("NAME LOG_DIR CWD come first, then -- and the server's command")
    name, log_dir, cwd, command = argv[0], Path(argv[1]), argv[2], argv[4:]
    log = ServerLog(name, log_dir)
    try:
        server = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
    except OSError as failure:
        log.event("ERROR", f"cannot start {command[0]}: {failure.strerror}")
        return 1
    log.event("INFO", f"started pid {server.pid} in {cwd}")
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    copier = threading.Thread(target=_copy, args=(server.stdout, log), daemon=True)
    copier.start()
    code = server.wait()
    copier.join(2)
    log.event("INFO" if code in (0, -signal.SIGTERM) else "ERROR", f"server exited with code {code}")
    return 0 if code == -signal.SIGTERM else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
