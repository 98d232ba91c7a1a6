"""Restore the evolution history from the newest backup made on or before a date.

Without --confirm it prints the plan and changes nothing (off a terminal it then exits 1,
"nothing restored", so that a script does not go on as if the data were back). With it: refuses while an
evolution is active, verifies every checksum into a staging folder beside each target,
moves the current data aside (kept, and named in the output; gc.py removes it after settings
retention.pre_restore_days) and swaps the restored data in with renames;
evolution_history/restore.json records what was restored. The live audit.log is never
replaced by the backup's copy: the restore is appended to it.

\b
Example (runbook, Disaster Recovery > Recovery Procedures):
    python scripts/restore.py --date 2024-01-15 --confirm
    python scripts/restore.py --date 2024-01-15 --confirm --source s3
"""

import _bootstrap  # noqa: F401
import click

from lib import cli, timeparse
from lib.errors import ToolError


@click.command(help=__doc__)
@click.option("--date", "day", required=True, help="today, yesterday or YYYY-MM-DD: the newest backup made by then.")
@click.option("--confirm", is_flag=True, help="Restore for real (without it: print the plan).")
@click.option("--source", type=click.Choice(["local", "s3"]), default=None,
              help="Where to look (default: local, then S3 when there is no local backup).")
@click.option("--kind", type=click.Choice(["auto", "daily", "full", "history"]), default="auto", show_default=True,
              help="auto: the newest daily or full backup (a daily one over the full backup before it).")
@cli.dry_run_option
@cli.json_option
def main(day: str, confirm: bool, source: str | None, kind: str, dry_run: bool, as_json: bool) -> int:
    from lib.backup import restore
    from lib.ops import backups

    dry = cli.is_dry_run(dry_run)
    result = backups.restore_backup(timeparse.parse_date(day), source, kind, confirm and not dry)
    if as_json:
        cli.print_json(result)
    else:
        cli.print_table(restore.describe(result), [("what", "WHAT"), ("value", "VALUE")])
    if not result["restored"] and not dry and not cli.interactive():
        # a script or cron job that forgot --confirm must not carry on as if the data were back
        raise ToolError("nothing restored: add --confirm")
    return 0


if __name__ == "__main__":
    cli.run(main)
