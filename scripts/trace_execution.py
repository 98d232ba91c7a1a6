"""Show the span tree of a trace: the evolution, its cycles and every agent call, indented,
with the start offset and duration of each.

The trace id is a task's trace_id (show_failure.py prints it); an evolution or task id
is accepted too.

\b
Example (runbook, Investigating Failures):
    python scripts/trace_execution.py --trace-id <trace_id>
"""

import _bootstrap  # noqa: F401
import click

from lib import cli, humanize


@click.command(help=__doc__)
@click.option("--trace-id", required=True, metavar="TRACE_ID", help="32 hex digits (or an evo-/task- id).")
@cli.json_option
def main(trace_id: str, as_json: bool) -> int:
    from lib.insight import tracing
    from lib.store import open_store

    document = tracing.trace(open_store(), trace_id)
    if as_json:
        cli.print_json(document)
        return 0
    total = humanize.duration(None if document["duration_ms"] is None else document["duration_ms"] / 1000)
    click.echo(f"trace {document['trace_id']}" + (f" (evolution {document['evolution_id']})"
                                                   if document["evolution_id"] else "") + f", {total or 'running'}")
    click.echo(tracing.render(document))
    return 0


if __name__ == "__main__":
    cli.run(main)
