"""Clean up after evolutions: temporary files, one evolution's leftovers, or everything.

\b
  --temp --older-than 24h  scratch folders of evolutions no longer running, stale
                           rotated current.log files, partial *.part/*.tmp files
  --evolution <id>         if its runner is gone but it is marked active, mark it
                           killed; end its orphaned agent processes; remove its
                           worktree and scratch folder (refused while it runs)
  --all --force            worktrees of every evolution that ended, all temp files

--dry-run (or EVOLUTION_DRY_RUN=true) lists every item and changes nothing.

\b
Examples (runbook, Evening Checklist; Stopping a Runaway Evolution; High Costs):
    python scripts/cleanup.py --temp --older-than 24h
    python scripts/cleanup.py --evolution <evolution_id>
    python scripts/cleanup.py --all --force
"""

import _bootstrap  # noqa: F401
import click

from lib import cli
from lib.errors import UsageError


@click.command(help=__doc__)
@click.option("--temp", is_flag=True, help="Remove temporary files older than --older-than.")
@click.option("--older-than", metavar="AGE", help="With --temp: 30m, 24h, 7d (default settings retention.temp_hours).")
@click.option("--evolution", "evolution_id", metavar="ID", help="Clean up after this evolution.")
@click.option("--all", "everything", is_flag=True, help="Clean up after every evolution that ended.")
@click.option("--force", is_flag=True, help="With --all: go ahead without asking.")
@cli.dry_run_option
@cli.verbose_option
def main(temp: bool, older_than, evolution_id, everything: bool, force: bool, dry_run: bool) -> int:
    from lib.ops import cleanup

    if sum((temp, bool(evolution_id), everything)) != 1:
        raise UsageError("pick one of --temp, --evolution <id>, --all", "see cleanup.py --help")
    if older_than and not temp:
        raise UsageError("--older-than goes with --temp")
    return cleanup.clean_up(older_than=older_than, evolution_id=evolution_id, everything=everything, force=force,
                            dry_run=cli.is_dry_run(dry_run))


if __name__ == "__main__":
    cli.run(main)
