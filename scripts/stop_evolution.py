"""Stop an evolution. --graceful asks it to stop at the next phase boundary and waits
(exit 0 stopped, 1 still running at --timeout; the request stays); --force ends its whole
process group at once (status killed; a stepfunctions evolution: StopExecution). An evolution
already final exits 0.

\b
Examples (runbook, Stopping a Runaway Evolution):
    python scripts/stop_evolution.py --id <evolution_id> --graceful
    python scripts/stop_evolution.py --id <evolution_id> --force
"""

import _bootstrap  # noqa: F401
import click

from lib import cli
from lib.errors import UsageError


@click.command(help=__doc__)
@click.option("--id", "evolution_id", required=True, help="Evolution id (evo-...).")
@click.option("--graceful", is_flag=True, help="Stop at the next phase boundary (the default).")
@click.option("--force", is_flag=True, help="End the process group now.")
@click.option("--timeout", type=click.FloatRange(min=0), default=300, show_default=True,
              help="Seconds --graceful waits for a final status.")
def main(evolution_id: str, graceful: bool, force: bool, timeout: float) -> int:
    from lib.ops import evolutions

    if graceful and force:
        raise UsageError("--graceful and --force exclude each other")
    return evolutions.stop(evolution_id, force, timeout)


if __name__ == "__main__":
    cli.run(main)
