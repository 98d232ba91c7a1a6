"""Collect garbage: remove orphaned worktrees (their evolution ended or is unknown), delete
tdev/auto/ branches merged into the base branch or abandoned (evolution ended without a PR,
last commit over 7 days ago), prune evolution artifact folders older than settings
retention.artifacts_days and what restores set aside (*.pre-restore-<stamp>) older than
retention.pre_restore_days, and compact the state store.

A branch that is not merged is deleted only when a remote holds its commits: one that
exists nowhere else is kept and named on stderr. --aggressive halves the artifact
retention and deletes the branch of every ended evolution without an open PR (on those
terms). --dry-run (or EVOLUTION_DRY_RUN=true) lists every item and changes nothing.

\b
Example (runbook, Appendix: Useful Commands):
    python scripts/gc.py --aggressive
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--aggressive", is_flag=True,
              help="Half the retention; any ended evolution's branch without an open PR.")
@cli.dry_run_option
@cli.verbose_option
def main(aggressive: bool, dry_run: bool) -> int:
    from lib.ops import cleanup

    return cleanup.collect_garbage(aggressive, cli.is_dry_run(dry_run))

if __name__ == "__main__":
    cli.run(main)
