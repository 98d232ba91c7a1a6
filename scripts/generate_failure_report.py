"""Write a Markdown incident report for a failed task: summary, timeline, error, log
excerpt, similar failures and next steps, ready to paste into an incident.

The file is written atomically; an existing file is kept unless --force is given.

\b
Example (runbook, Investigating Failures):
    python scripts/generate_failure_report.py --id <task_id> --output report.md
"""

from pathlib import Path

import _bootstrap  # noqa: F401
import click

from lib import cli, fsutil
from lib.errors import Conflict


@click.command(help=__doc__)
@click.option("--id", "task_id", required=True, metavar="TASK_ID", help="The task id (task-...).")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The report file.")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
def main(task_id: str, output: Path, force: bool) -> int:
    from lib.insight import diagnose
    from lib.store import open_store

    text = diagnose.render_markdown(diagnose.incident(open_store(), task_id))
    if output.exists() and not force:
        raise Conflict(f"{output} already exists", "pass --force to overwrite it, or pick another --output")
    fsutil.atomic_write(output, text)
    cli.info(f"wrote {output} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    cli.run(main)
