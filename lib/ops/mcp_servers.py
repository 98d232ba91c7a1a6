"""The MCP commands' actions: restart_mcp.py's restart with its audit line, and python -m mcp.test's table (each
failure with its last stderr lines). The servers are tested, started and stopped by lib/adapters/mcp_control.py."""

from __future__ import annotations

from lib import checks, cli
from lib.adapters import mcp_control
from lib.adapters.mcp_config import ServerSpec
from lib.adapters.mcp_control import report

COLUMNS = [("name", "SERVER"), ("transport", "TRANSPORT"), ("status_text", "STATUS"), ("latency", "HANDSHAKE"),
           ("protocol_version", "PROTOCOL"), ("server", "NAME/VERSION"), ("tools", "TOOLS"), ("error", "REASON")]


def print_report(rows: list[dict], as_json: bool) -> checks.Report:
    """The table (failures followed by their last stderr lines) or the JSON document; the report."""
    result = report(rows)
    if as_json:
        cli.print_json({"status": result.status, "servers": rows})
        return result
    print(result.first_line())
    cli.print_table([_display(row) for row in rows], COLUMNS, empty="no MCP servers configured")
    for row in rows:
        if row["status"] != "ok":
            print(f"\n{row['name']}: {row['error']}")
            for line in row["stderr_tail"]:
                print(f"  | {line}")
            print(f"  log: {row['log']}")
    return result


def _display(row: dict) -> dict:
    who = " ".join(str(part) for part in (row["server_name"], row["server_version"]) if part)
    return {**row, "status_text": row["status"].upper(), "server": who,
            "latency": f"{row['latency_ms']} ms" if row["latency_ms"] is not None else ""}


def restart(servers: list[ServerSpec], timeout: float, dry_run: bool) -> list[dict]:
    """What restart_mcp.py runs: the restart, each server tested after it, and the audit line."""
    rows = mcp_control.restart(servers, timeout, dry_run)
    if not dry_run:
        failed = [row["name"] for row in rows if row["status"] == "failed"]
        cli.audit("failed" if failed else "ok", servers=[row["name"] for row in rows], failed=failed)
    return rows
