"""Try the routes of config/notify.yaml: a test event through each destination (PagerDuty: a
trigger, then its resolve, on a key of its own; Slack: one message), and what each answered.
The notify state is left alone. Exit 0 every destination answered, 1 one failed, 2 usage.

\b
Example (runbook, Monitoring; after changing a key or a webhook):
    python scripts/notify.py --test
    python scripts/notify.py --test --route notify-oncall --json
"""

import _bootstrap  # noqa: F401
import click

from lib import cli
from lib.errors import UsageError

COLUMNS = [("route", "ROUTE"), ("kind", "KIND"), ("credential", "CREDENTIAL"), ("result", "RESULT"),
           ("answered", "ANSWERED")]


@click.command(help=__doc__)
@click.option("--test", "send_test", is_flag=True, help="Send a test event through every route (or --route).")
@click.option("--route", metavar="NAME", help="Only this route (notify-oncall, notify-team, page-security).")
@cli.json_option
def main(send_test: bool, route: str | None, as_json: bool) -> int:
    from lib.hooks import notify as hooks

    if not send_test:
        raise UsageError("nothing to do", "pass --test to send a test event through the routes")
    rows = hooks.send_test(route)
    failed = [row for row in rows if not row["ok"]]
    cli.audit("failed" if failed else "ok", routes=[row["route"] for row in rows], failed=len(failed))
    cli.emit({"ok": not failed, "routes": rows}, as_json,
             [{**row, "result": "ok" if row["ok"] else "FAILED", "answered": "; ".join(row["answers"])}
              for row in rows], COLUMNS)
    return 1 if failed else 0


if __name__ == "__main__":
    cli.run(main)
