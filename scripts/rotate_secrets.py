"""Rotate the project's secrets in Secrets Manager, as DESIGN §8 says, and show each one's age.

A secret with a rotation Lambda: RotateSecret. A secret tagged tdev:rotation=generated (a
value only this system issues and reads): a new random value through AWSPENDING, read back,
made AWSCURRENT (the old one AWSPREVIOUS) and verified; then the agents that name it under
`secrets:` in config/agents.yaml are restarted. Every other secret is issued elsewhere and
never given a value here: it is reported with its age, with a WARNING past settings
retention.rotation_days. No value is ever printed. One failure does not stop the rest; the
exit code is 1 when any failed or was left with a warning.

\b
Example (runbook, Monthly Tasks):
    python scripts/rotate_secrets.py --all
"""

import _bootstrap  # noqa: F401
import click

from lib import cli
from lib.adapters import aws
from lib.errors import UsageError
from lib.ops import secret_rotation


@click.command(help=__doc__)
@click.option("--all", "all_secrets", is_flag=True, help="Every secret whose name starts with t-developer/.")
@click.option("--name", help="One secret by name or ARN.")
@cli.dry_run_option
@cli.json_option
@cli.verbose_option
def main(all_secrets: bool, name: str | None, dry_run: bool, as_json: bool) -> int:
    if bool(all_secrets) == bool(name):
        raise UsageError("give either --all or --name NAME", "see rotate_secrets.py --help")
    aws.require_credentials("rotate secrets")
    dry = cli.is_dry_run(dry_run)
    with cli.lock("rotate_secrets"):  # a secret half-way through its stages must not be rotated twice
        rows = secret_rotation.rotate_all(secret_rotation.select(name), dry)
    failed = [row["name"] for row in rows if not row["ok"]]
    overdue = [row["name"] for row in rows if row["warning"]]
    if not dry:
        cli.audit("failed" if failed else "warning" if overdue else "rotated",
                  secrets=secret_rotation.by_result(rows), overdue=overdue,
                  restarted=sorted({agent for row in rows for agent in row["restarted"]}))
    if as_json:
        cli.print_json([{k: v for k, v in row.items() if k != "ok"} for row in rows])
    elif cli.report_wanted(important=dry or any(row["result"] != "rotated" for row in rows)):
        # under cron the table still shows a failure and the secrets issued elsewhere (their age is the reminder)
        cli.print_table(rows, secret_rotation.COLUMNS, empty=f"no secrets under {secret_rotation.prefix()}")
    if overdue:
        cli.info(f"warning: {len(overdue)} secret(s) issued elsewhere are past rotation_days and need a new value "
                 f"from their issuer: {', '.join(overdue)}")
    if failed:
        cli.info(f"error: {len(failed)} of {len(rows)} secrets failed: {', '.join(failed)}")
    return 1 if failed or overdue else 0


if __name__ == "__main__":
    cli.run(main)
