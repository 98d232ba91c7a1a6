"""Start an evolution: research -> plan -> implement -> evaluate -> gate -> PR, per cycle.

Without --monitor it starts detached and prints the evolution id and its log; with
--monitor it shows live progress and exits with the result (0 succeeded, 1 otherwise).
Ctrl-C under --monitor asks for a graceful stop.

\b
Examples (runbook, Starting an Evolution Cycle; Quality Gates Failing):
    python scripts/run_evolution.py --target $EVOLUTION_TARGET --cycles $EVOLUTION_CYCLES \\
        --focus $EVOLUTION_FOCUS --monitor
    python scripts/run_evolution.py --focus quality --force
"""

import _bootstrap  # noqa: F401
import click

from lib import cli, evolution, paths
from lib.errors import ToolError
from lib.health import preflight
from lib.ops import monitor as live
from lib.store import open_store


@click.command(help=__doc__)
@click.option("--target", help="Folder to evolve (default EVOLUTION_TARGET, then settings).")
@click.option("--cycles", type=int, help="Cycles to run (default EVOLUTION_CYCLES or 1; capped by MAX_CYCLES).")
@click.option("--focus", help=f"One of {', '.join(evolution.FOCUSES)} (default EVOLUTION_FOCUS or quality).")
@click.option("--monitor", is_flag=True, help="Follow the evolution until it ends.")
@click.option("--force", is_flag=True, help="Start although non-safety pre-checks fail.")
@cli.dry_run_option
def main(target, cycles, focus, monitor: bool, force: bool, dry_run: bool) -> int:
    target, cycles, focus = evolution.defaults(target, cycles, focus)
    path = evolution.resolve_target(target)
    store = open_store(create=True)
    results = preflight.run(str(path))
    for result in results:
        if result.status != "ok":
            cli.info(f"pre-check {result.name}: {result.status.upper()}: {result.summary}")
    blocking = preflight.blocking(results, force)
    if blocking:
        raise ToolError("pre-evolution checks failed: " + "; ".join(f"{r.name}: {r.summary}" for r in blocking),
                        "fix them, or pass --force to skip the checks that are not about safety")
    record = evolution.create(store, path, focus, cycles, cli.is_dry_run(dry_run))
    pid = evolution.start_detached(store, record["id"])
    cli.audit("started", evolution_id=record["id"], target=str(path), focus=focus, cycles=cycles, pid=pid)
    log_path = paths.evolution_dir(record["id"]) / "evolution.log"
    click.echo(f"{record['id']} started (pid {pid}); log: {log_path}")
    if not monitor:
        return 0
    final = live.follow(store, record["id"])
    click.echo(f"{final['id']} {final['status']}" + (f": {final['error']}" if final.get("error") else ""))
    return 0 if final["status"] == "succeeded" else 1


if __name__ == "__main__":
    cli.run(main)
