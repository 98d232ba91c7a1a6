"""Show why a task (one agent call) failed: the task, its error, the agent's input and
output, the stderr tail, the log lines around it and what to do next.

\b
Example (runbook, Investigating Failures):
    python scripts/show_failure.py --id <task_id>
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--id", "task_id", required=True, metavar="TASK_ID", help="The task id (task-...).")
@cli.json_option
def main(task_id: str, as_json: bool) -> int:
    from lib.insight import diagnose
    from lib.store import open_store

    details = diagnose.task_failure(open_store(), task_id)
    if as_json:
        cli.print_json(details)
    else:
        click.echo(diagnose.render_task(details))
    return 0


if __name__ == "__main__":
    cli.run(main)
