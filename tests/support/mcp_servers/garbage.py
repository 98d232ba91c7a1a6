"""A broken MCP server: answers the first request with text that is not JSON-RPC."""

import sys

sys.stdin.readline()
print("Welcome to my server! Type help for commands.", flush=True)
sys.stdin.readline()
