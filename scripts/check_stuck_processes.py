"""Check for stuck evolutions and orphaned agent processes.

CRITICAL: an evolution marked active whose runner is gone (same host: the pid is dead or
another program) or whose heartbeat is stale. WARNING: a phase running past
TIMEOUT_SECONDS (default 3600), or an agent process (TDEV_EVOLUTION_ID=<id>) of an
evolution that is already final. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. Read only.

\b
Example (runbook, Evening Checklist):
    python scripts/check_stuck_processes.py
"""

import _bootstrap  # noqa: F401
import click

from lib import cli

COLUMNS = [("evolution_id", "EVOLUTION"), ("kind", "PROBLEM"), ("status", "STATUS"), ("pid", "PID"),
           ("summary", "SUMMARY")]


@click.command(help=__doc__)
@cli.json_option
@cli.notify_option
def main(as_json: bool, notify: bool) -> int:
    from lib.evolution import stuck
    from lib.store import open_store

    result = stuck.scan(open_store())
    report = stuck.report(result)
    code = cli.conclude(report, notify)  # sent before printing: a closed pipe cannot swallow it
    if as_json:
        cli.print_json(result)
    else:
        click.echo(report.first_line())
        if result["findings"]:
            cli.print_table([{**f, "status": f["status"].upper()} for f in result["findings"]], COLUMNS)
    return code


if __name__ == "__main__":
    cli.run(main, check=True)
