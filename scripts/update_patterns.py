"""Mine the evolution history for recurring failures and successful change kinds.

Failure signatures are (phase, error class, files) of failed tasks; a refused attempt's also
names its hunks, failing test ids and failing gates (before, after), so that the next evolution
of the target is told what failed. Success patterns are the focus, target and change kind of
succeeded evolutions. They are merged with the
stored patterns (hits never go down); the report lists what is new and what was updated.
Takes a lock, so overlapping cron runs do not collide.

\b
Example (runbook, Weekly Tasks):
    python scripts/update_patterns.py --source evolution_history/
"""

from pathlib import Path

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--source", type=click.Path(file_okay=False, path_type=Path), default="evolution_history/",
              show_default=True, help="The history folder to mine.")
@cli.dry_run_option
@cli.json_option
@cli.verbose_option
def main(source: Path, dry_run: bool, as_json: bool) -> int:
    from lib.quality import patterns

    dry = cli.is_dry_run(dry_run)
    with cli.lock("update_patterns"):
        report, folder = patterns.update_from(source, dry_run=dry)
    if not dry:
        cli.audit("ok", source=str(folder), new=len(report["new"]), updated=len(report["updated"]))
    if as_json:
        cli.print_json({**report, "dry_run": dry})
        return 0
    if not cli.report_wanted(important=dry):
        return 0
    rows = [{**p, "change": change, "what": patterns.describe(p),
             "hits": f"{p.get('hits_before', 0)} -> {p['hits']}" if change == "updated" else p["hits"]}
            for change in ("new", "updated") for p in report[change]]
    cli.info(f"{'would add' if dry else 'added'} {len(report['new'])} pattern(s), "
             f"{'would update' if dry else 'updated'} {len(report['updated'])}, {report['unchanged']} unchanged")
    cli.print_table(rows, [("change", "CHANGE"), ("id", "PATTERN"), ("kind", "KIND"), ("hits", "HITS"),
                           ("what", "SIGNATURE")], empty="no new or updated patterns")
    return 0


if __name__ == "__main__":
    cli.run(main)
