"""Stop an evolution. --graceful asks it to stop at the next phase boundary and waits
(exit 0 stopped, 1 still running at --timeout; the request stays); --force ends its whole
process group at once (status killed). An evolution already final exits 0.

\b
Examples (runbook, Stopping a Runaway Evolution):
    python scripts/stop_evolution.py --id <evolution_id> --graceful
    python scripts/stop_evolution.py --id <evolution_id> --force
"""

import _bootstrap  # noqa: F401
import click

from lib import cli, evolution
from lib.errors import UsageError
from lib.store import FINAL, open_store


@click.command(help=__doc__)
@click.option("--id", "evolution_id", required=True, help="Evolution id (evo-...).")
@click.option("--graceful", is_flag=True, help="Stop at the next phase boundary (the default).")
@click.option("--force", is_flag=True, help="End the process group now.")
@click.option("--timeout", type=click.FloatRange(min=0), default=300, show_default=True,
              help="Seconds --graceful waits for a final status.")
def main(evolution_id: str, graceful: bool, force: bool, timeout: float) -> int:
    if graceful and force:
        raise UsageError("--graceful and --force exclude each other")
    store = open_store()
    before = evolution.get(store, evolution_id)
    if before["status"] in FINAL:
        click.echo(f"{evolution_id} is already {before['status']}; nothing to stop")
        return 0
    if force:
        record = evolution.force_stop(store, evolution_id)
        cli.audit(record["status"], evolution_id=evolution_id, mode="force")
        click.echo(f"{evolution_id} {record['status']} (process group {before.get('pid')} ended); "
                   f"clean up: python scripts/cleanup.py --evolution {evolution_id}")
        return 0
    evolution.request_stop(store, evolution_id)
    cli.info(f"graceful stop requested; waiting up to {timeout:g}s for {evolution_id}")
    record = evolution.wait_final(store, evolution_id, timeout)
    cli.audit(record["status"], evolution_id=evolution_id, mode="graceful")
    if record["status"] in FINAL:
        click.echo(f"{evolution_id} {record['status']}")
        return 0
    click.echo(f"{evolution_id} still {record['status']} after {timeout:g}s; the stop request stays. "
               f"To end it now: python scripts/stop_evolution.py --id {evolution_id} --force")
    return 1


if __name__ == "__main__":
    cli.run(main)
