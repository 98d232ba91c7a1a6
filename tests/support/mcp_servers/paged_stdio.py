"""A hand-written stdio MCP server: asks the client for roots, lists its tools in pages.

It checks what a client must do: answer (or refuse) a server request, send
notifications/initialized, and follow nextCursor through every page of tools/list.
With --no-tools it offers no tools capability and refuses tools/list.
"""

import json
import sys

PAGES = {None: (["alpha", "beta"], "page-2"), "page-2": (["gamma"], "page-3"), "page-3": (["delta"], None)}


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


initialized = False
offers_tools = "--no-tools" not in sys.argv
for line in sys.stdin:
    message = json.loads(line)
    method = message.get("method")
    if method == "initialize":
        send({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "hello"}})
        send({"jsonrpc": "2.0", "id": "srv-1", "method": "roots/list"})
        send({"jsonrpc": "2.0", "id": message["id"], "result": {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}} if offers_tools else {},
            "serverInfo": {"name": "paged", "version": "0.1"}}})
    elif method == "notifications/initialized":
        initialized = True
    elif method == "tools/list":
        if not offers_tools:
            send({"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": "no tools"}})
            continue
        if not initialized:
            send({"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32002, "message": "not initialized"}})
            continue
        names, cursor = PAGES[(message.get("params") or {}).get("cursor")]
        result = {"tools": [{"name": n, "inputSchema": {"type": "object"}} for n in names]}
        if cursor:
            result["nextCursor"] = cursor
        send({"jsonrpc": "2.0", "id": message["id"], "result": result})
    elif "id" in message and "method" not in message:
        print(f"client answered {message['id']}: {'error' if 'error' in message else 'result'}", file=sys.stderr,
              flush=True)
