"""A broken MCP server: complains on stderr and exits before the handshake."""

import sys

print("fatal: cannot open database /nonexistent/db.sqlite", file=sys.stderr)
sys.exit(3)
