"""Create or update the Step Functions state machine of the stepfunctions executor (DESIGN §10):
one ECS Fargate task per evolution (runTask.sync) running python -m lib.evolution.worker <id>,
infrastructure errors retried with jitter, an evolution's own failure never retried.
Idempotent: says created, updated or unchanged. It first checks that the cluster, the task
definition (with the container), the subnets and security groups of settings `executor:` exist.

\b
Examples:
    python scripts/setup_executor.py --dry-run     # print the definition
    python scripts/setup_executor.py
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@cli.dry_run_option
def main(dry_run: bool) -> int:
    from lib.ops import executor

    return executor.setup(cli.is_dry_run(dry_run))


if __name__ == "__main__":
    cli.run(main)
