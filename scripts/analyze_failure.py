"""Analyse an evolution: the failing phase and task, the error, the log lines around it,
similar past failures and what to do next.

--json prints one evolution object with its tasks (each with id, phase, status, error,
trace_id) plus failure, log_excerpt, similar_failures and next_steps.

\b
Example (runbook, Stopping a Runaway Evolution):
    python scripts/analyze_failure.py --id <evolution_id>
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--id", "evolution_id", required=True, metavar="EVOLUTION_ID", help="The evolution id (evo-...).")
@cli.json_option
def main(evolution_id: str, as_json: bool) -> int:
    from lib.insight import diagnose
    from lib.store import open_store

    report = diagnose.analyze(open_store(), evolution_id)
    if as_json:
        cli.print_json(report)
    else:
        click.echo(diagnose.render_analysis(report))
    return 0


if __name__ == "__main__":
    cli.run(main)
