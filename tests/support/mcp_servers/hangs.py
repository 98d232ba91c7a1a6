"""A broken MCP server: starts, says so on stderr, and never answers."""

import sys
import time

print("starting up...", file=sys.stderr, flush=True)
while True:
    time.sleep(60)
