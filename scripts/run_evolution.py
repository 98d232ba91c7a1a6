"""Start an evolution: research -> plan -> implement -> evaluate -> gate -> PR, per cycle.

Without --monitor it starts detached and prints the evolution id and its log; with
--monitor it shows live progress and exits with the result: 0 succeeded or
unchanged (no cycle found anything to change), 1 otherwise (failed, stopped, killed).
Ctrl-C under --monitor asks for a graceful stop. --executor stepfunctions runs it in an
ECS Fargate task through Step Functions (DynamoDB store only); --targets-file starts one
evolution per line, at most executor.max_concurrent at a time (the rest wait as pending).

\b
Examples (runbook, Starting an Evolution Cycle; Quality Gates Failing):
    python scripts/run_evolution.py --target $EVOLUTION_TARGET --cycles $EVOLUTION_CYCLES \\
        --focus $EVOLUTION_FOCUS --monitor
    python scripts/run_evolution.py --focus quality --force
    python scripts/run_evolution.py --focus docs --agents config/agents-openai.yaml --budget-usd 2.50
    TDEV_STATE_BACKEND=dynamodb python scripts/run_evolution.py --executor stepfunctions \\
        --targets-file targets.txt --focus quality
"""

from pathlib import Path

import _bootstrap  # noqa: F401
import click

from lib import cli
from lib.paths import EXECUTORS
from lib.quality import FOCUSES


@click.command(help=__doc__)
@click.option("--target", help="Folder to evolve (default EVOLUTION_TARGET, then settings).")
@click.option("--cycles", type=int, help="Cycles to run (default EVOLUTION_CYCLES or 1; capped by MAX_CYCLES).")
@click.option("--focus", help=f"One of {', '.join(FOCUSES)} (default EVOLUTION_FOCUS or quality).")
@click.option("--attempts", type=int, help="Implement attempts per cycle (default settings evolution.max_attempts, 3).")
@click.option("--monitor", is_flag=True, help="Follow the evolution until it ends.")
@click.option("--force", is_flag=True, help="Start although non-safety pre-checks fail.")
@click.option("--budget-usd", type=float, help="Cap this evolution's cost in USD: a model call that could "
              "overshoot it is not made (default evolution.max_cost_usd).")
@click.option("--agents", "agents_file", help="Agent registry for this evolution (shape of config/agents.yaml).")
@click.option("--executor", type=click.Choice(EXECUTORS),
              help="Where the runner runs (default settings evolution.executor, local).")
@click.option("--targets-file", type=click.Path(dir_okay=False, path_type=Path),
              help="One target per line (path, or repo:path): one evolution each.")
@cli.dry_run_option
def main(target, cycles, focus, attempts, monitor: bool, force: bool, budget_usd, agents_file, executor, targets_file,
         dry_run: bool) -> int:
    from lib.evolution import executors
    from lib.ops import evolutions

    options = {"attempts": attempts, "budget_usd": budget_usd, "agents_file": agents_file}
    chosen = executors.choose(executor)
    if targets_file or chosen != executors.LOCAL:
        from lib.ops import executor as executor_ops

        return executor_ops.start(targets_file, target, cycles, focus, executor=chosen, force=force,
                                  dry_run=cli.is_dry_run(dry_run), monitor=monitor, **options)
    return evolutions.start(target, cycles, focus, force=force, dry_run=cli.is_dry_run(dry_run), monitor=monitor,
                            **options)


if __name__ == "__main__":
    cli.run(main)
