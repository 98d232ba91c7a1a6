"""Verify a restore: the live history against restore.json's manifest, or an archive against its own.

Checks every file's size and SHA-256, the store's integrity check and row counts, and
that every config file loads. Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

\b
Example (runbook, Disaster Recovery > Recovery Procedures):
    python scripts/verify_restore.py
    python scripts/verify_restore.py --archive /backups/t-developer/daily/2024-01-15/tdev-daily-20240115T020000Z.tar.zst
"""

from pathlib import Path

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--archive", "archive_path", type=click.Path(path_type=Path),
              help="Check this archive against its own manifest instead of the live data.")
@cli.json_option
@cli.notify_option
def main(archive_path: Path | None, as_json: bool, notify: bool) -> int:
    from lib.backup import verify

    results, target = verify.run(archive_path)
    return cli.report_checks(results, as_json, "VERIFY", context=target, timings=True, notify_flag=notify,
                             mode="archive" if archive_path else None)


if __name__ == "__main__":
    cli.run(main, check=True)
