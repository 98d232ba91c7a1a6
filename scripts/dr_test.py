"""Disaster-recovery drill: restore the newest stored backup into a scratch folder and verify it.

Takes the newest daily or full backup in the local backup folder and, when an off-site
copy is configured (settings aws.backup_bucket, TDEV_BACKUP_BUCKET), the newest in S3;
restores each into a scratch installation (every SHA-256 checked) and verifies the
files, the store's row counts and the config there. Live data is only read. Reports the
RPO (age of the backup restored) and the RTO (measured restore time), the worst of the
places; exits 1 when there is no backup, one is older than --max-rpo, or a step fails.

\b
Example (runbook, Appendix > Useful Commands):
    python scripts/dr_test.py --simulate
"""

from pathlib import Path

import _bootstrap  # noqa: F401
import click

from lib import cli, humanize, timeparse


@click.command(help=__doc__)
@click.option("--simulate", is_flag=True, help="Run the drill in a scratch folder (the only mode).")
@click.option("--max-rpo", default="26h", show_default=True, help="Oldest acceptable backup, per place (24h, 2d).")
@click.option("--scratch", type=click.Path(file_okay=False, path_type=Path), help="Where to make the scratch folder.")
@click.option("--keep", is_flag=True, help="Keep the scratch folder for inspection.")
@cli.json_option
def main(simulate: bool, max_rpo: str, scratch: Path | None, keep: bool, as_json: bool) -> int:
    from lib.backup import drill

    if not simulate:
        raise click.UsageError("the drill only runs with --simulate (a real restore is scripts/restore.py)")
    report = drill.simulate(timeparse.parse_duration(max_rpo), scratch, keep)
    if as_json:
        cli.print_json(report)
    else:
        cli.print_table(report["steps"], [("name", "STEP"), ("status", "STATUS"), ("seconds", "SECONDS"),
                                          ("detail", "DETAIL")])
        rpo = humanize.hours(report["rpo_s"]) if report["rpo_s"] is not None else "no backup"
        rto = f"{report['rto_s']} s" if report["rto_s"] is not None else "not measured"
        click.echo(f"drill {report['status'].upper()}: RPO {rpo}, RTO {rto}"
                   + (f"; scratch kept in {report['scratch']}" if report["scratch"] else ""))
    return 0 if report["status"] == "passed" else 1


if __name__ == "__main__":
    cli.run(main)
