"""Check that the system is ready for an evolution: environment, resources, no active cycle
on the target, a metrics baseline, safety limits. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

\b
Example (runbook, Starting an Evolution Cycle):
    python scripts/pre_evolution_check.py
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--target", help="Folder to evolve (default EVOLUTION_TARGET, then settings).")
@click.option("--focus", help="The focus to check the agents against (default EVOLUTION_FOCUS or quality).")
@cli.json_option
def main(target, focus, as_json: bool) -> int:
    from lib.evolution import lifecycle
    from lib.health import preflight

    target, _, focus = lifecycle.defaults(target, 1, focus)
    return cli.report_checks(preflight.run(target, focus), as_json, "PRE-EVOLUTION", timings=True)


if __name__ == "__main__":
    cli.run(main, check=True)
