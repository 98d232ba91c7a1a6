"""Health check of the MCP servers the agents use: each one answers the handshake."""

from __future__ import annotations

from lib import paths
from lib.adapters import mcp_config, mcp_control
from lib.errors import ToolError
from lib.health import check

SERVER_TIMEOUT = 10.0  # the per-server limit of `python -m mcp.test`


@check("mcp_servers", "mcp", groups=("full",), timeout=SERVER_TIMEOUT + 5)
def mcp_servers(context: dict) -> tuple[str, str]:
    """Every configured server tested at once (server processes end before the check returns)."""

    if not paths.mcp_config().exists():
        return "warning", f"no MCP config at {paths.mcp_config()}; write it: python scripts/init_evolution.py"
    try:
        servers = mcp_config.load()
    except ToolError as failure:
        return "critical", str(failure)
    rows = mcp_control.test_all(servers, SERVER_TIMEOUT)
    status = mcp_control.check_status(rows)
    if not rows:
        return status, f"no servers configured in {paths.mcp_config()}"
    failed = [f"{row['name']}: {row['error']}" for row in rows if row["status"] != "ok"]
    answered = ", ".join(f"{row['name']} {row['latency_ms']} ms" for row in rows if row["status"] == "ok")
    summary = f"{len(rows) - len(failed)}/{len(rows)} servers answered" + (f" ({answered})" if answered else "")
    if failed:
        summary += "; failed: " + "; ".join(failed) + " (python -m mcp.test all)"
    return status, summary
