"""Rotate the project's secrets in Secrets Manager and show each one's age before and after.

With a rotation Lambda: RotateSecret. Otherwise a new random value goes through
AWSPENDING, is read back, becomes AWSCURRENT (the old one AWSPREVIOUS) and is verified.
Secrets tagged tdev:rotation=external are only reported. No value is ever printed.
One failure does not stop the rest; the exit code is 1 when any failed.

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
    if not dry:
        cli.audit("failed" if failed else "rotated", secrets=secret_rotation.by_result(rows))
    if as_json:
        cli.print_json([{k: v for k, v in row.items() if k != "ok"} for row in rows])
    elif cli.report_wanted(important=dry or any(row["result"] != "rotated" for row in rows)):
        # under cron the table still shows a failure and the secrets issued elsewhere (their age is the reminder)
        cli.print_table(rows, secret_rotation.COLUMNS, empty=f"no secrets under {secret_rotation.prefix()}")
    if failed:
        cli.info(f"error: {len(failed)} of {len(rows)} secrets failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    cli.run(main)
