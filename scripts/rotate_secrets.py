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
from lib.errors import UsageError


@click.command(help=__doc__)
@click.option("--all", "all_secrets", is_flag=True, help="Every secret whose name starts with t-developer/.")
@click.option("--name", help="One secret by name or ARN.")
@cli.dry_run_option
@cli.json_option
@cli.verbose_option
def main(all_secrets: bool, name: str | None, dry_run: bool, as_json: bool) -> int:
    from lib.adapters import aws
    from lib.ops import secret_rotation

    if bool(all_secrets) == bool(name):
        raise UsageError("give either --all or --name NAME", "see rotate_secrets.py --help")
    aws.require_credentials("rotate secrets")
    return secret_rotation.run(name, cli.is_dry_run(dry_run), as_json)


if __name__ == "__main__":
    cli.run(main)
