"""The agent commands' actions and tables (agent_status.py, restart_agent.py, scale_agent.py, stop_all_agents.py,
...): their audit lines and exit codes; the work across the registry is lib/agents/fleet.py's."""

from __future__ import annotations

from lib import agents, cli
from lib.agents import fleet
from lib.store import open_store

STATUS_COLUMNS = [("name", "AGENT"), ("runtime", "RUNTIME"), ("state", "STATE"), ("version", "VERSION/CHANGED"),
                  ("capacity", "CAPACITY"), ("errors_last_hour", "ERRORS 1H"), ("health", "HEALTH"),
                  ("detail", "DETAIL")]
ACTION_COLUMNS = [("name", "AGENT"), ("runtime", "RUNTIME"), ("result", "RESULT"), ("capacity", "CAPACITY"),
                  ("detail", "DETAIL")]
USAGE_COLUMNS = [("figure", "FIGURE"), ("value", "LAST HOUR"), ("limit", "LIMIT"), ("unit", "UNIT"),
                 ("status", "STATUS"), ("note", "NOTE")]


def public(rows: list[dict]) -> list[dict]:
    """Rows as --json shows them: without the internal ok flag."""
    return [{key: value for key, value in row.items() if key != "ok"} for row in rows]


def stop_or_start_all(action: str, name: str | None, dry_run: bool) -> tuple[list[dict], int]:
    """What stop_all_agents.py and start_all_agents.py run: the action, its audit line, the exit code."""

    run = fleet.stop_all if action == "stop" else fleet.start_all
    rows = run(fleet.select(name), open_store(create=not dry_run), dry_run)
    failed = [row["name"] for row in rows if not row["ok"]]
    if not dry_run:
        cli.audit("failed" if failed else {"stop": "stopped", "start": "started"}[action],
                  agents={row["name"]: row["result"] for row in rows})
    return rows, 1 if failed else 0


def restart(name: str, dry_run: bool) -> dict:
    """What restart_agent.py runs: the restart and its audit line."""
    result = fleet.restart(agents.get(name), dry_run)
    if not dry_run:
        cli.audit("restarted", agent=name, detail=result["detail"])
    return result


def scale(name: str, instances: int, provisioned: bool, dry_run: bool) -> dict:
    """What scale_agent.py runs: the new capacity and its audit line."""
    result = fleet.scale(agents.get(name), instances, provisioned, dry_run)
    if not dry_run:
        cli.audit("scaled", agent=name, what=result["what"], old=result["old"], new=result["new"])
    return result
