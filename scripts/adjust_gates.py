"""Change one quality gate threshold in config/gates.yaml, keeping the file's comments.

Metrics: docstring, coverage (percent, 0-100), maintainability (0-100), complexity and
security (0 or more). Prints the old and the new value and records both in the audit log.

\b
Example (runbook, Quality Gates Failing):
    python scripts/adjust_gates.py --metric docstring --threshold 75
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--metric", required=True, help="docstring, complexity, maintainability, coverage or security.")
@click.option("--threshold", required=True, type=float, help="The new threshold.")
@cli.dry_run_option
@cli.json_option
def main(metric: str, threshold: float, dry_run: bool, as_json: bool) -> int:
    from lib.quality import gates_file

    dry = cli.is_dry_run(dry_run)
    result = gates_file.adjust(metric, threshold, dry_run=dry)
    verdict = "unchanged" if not result["changed"] else "dry-run" if dry else "changed"
    cli.audit(verdict, metric=metric, old=result["old"], new=result["new"], file=result["path"])
    if as_json:
        cli.print_json({**result, "dry_run": dry})
        return 0
    old = "unset" if result["old"] is None else f"{result['old']:g}"
    line = f"{metric}: {old} -> {result['new']:g} ({result['unit']})"
    if not result["changed"]:
        line = f"{metric}: already {result['new']:g} ({result['unit']}); nothing to change"
    elif dry:
        line += " [dry run: config/gates.yaml not changed]"
    click.echo(line)
    return 0


if __name__ == "__main__":
    cli.run(main)
