"""A Streamable HTTP MCP server from the `mcp` SDK (MCPServer), for tests and benchmarks.

    python http_server.py PORT [--token TOKEN] [--json]

Run it with a cwd outside the project root so that `mcp` is the SDK, not our shim.
With --token it answers 401 unless `Authorization: Bearer TOKEN` comes with the request.
"""

import argparse

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.responses import JSONResponse

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("--token")
parser.add_argument("--json", action="store_true", help="answer with application/json instead of SSE")
options = parser.parse_args()

server = MCPServer("http-test", version="1.2.3")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Say it back."""
    return text


app = server.streamable_http_app(json_response=options.json)


async def guarded(scope, receive, send):
    if options.token and scope["type"] == "http":
        headers = dict(scope.get("headers") or [])
        if headers.get(b"authorization", b"").decode() != f"Bearer {options.token}":
            await JSONResponse({"error": "unauthorized"}, status_code=401)(scope, receive, send)
            return
    await app(scope, receive, send)


uvicorn.run(guarded, host="127.0.0.1", port=options.port, log_level="info")
