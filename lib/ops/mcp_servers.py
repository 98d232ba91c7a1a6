"""The MCP commands' printing (python -m mcp.test): the servers' table, each failure with its last stderr lines.
The servers themselves are tested, started and stopped by lib/adapters/mcp_control.py."""

from __future__ import annotations

from lib import checks, cli
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
