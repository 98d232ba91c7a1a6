"""Check the quality gates of config/gates.yaml on the evolution targets, and the key metrics
against config/thresholds.yaml. Exit 0 OK, 1 WARNING, 2 CRITICAL (a gate failed or a metric
is past its alert threshold), 3 UNKNOWN.

Targets: settings evolution.default_target and EVOLUTION_TARGET (or --target); --all adds
every target the evolution history has seen.

\b
Examples (runbook, Rolling Back Changes / Quality Gates Failing):
    python scripts/check_metrics.py --all
    python scripts/check_metrics.py --verbose
"""

import _bootstrap  # noqa: F401
import click

from lib import cli, insight


@click.command(help=__doc__)
@click.option("--all", "every", is_flag=True, help="Also every target seen in the evolution history.")
@click.option("--verbose", is_flag=True, help="List the worst files per gate.")
@click.option("--target", "explicit", multiple=True, help="Check this target instead of the defaults (repeatable).")
@click.option("--window", default=insight.DEFAULT_WINDOW, show_default=True, help="Window of the key metrics.")
@click.option("--gates-only", is_flag=True, help="Only the quality gates (what CI runs).")
@click.option("--metrics-only", is_flag=True, help="Only the key metrics.")
@cli.json_option
@cli.notify_option
def main(every: bool, verbose: bool, explicit: tuple, window: str, gates_only: bool, metrics_only: bool,
         as_json: bool, notify: bool) -> int:
    from lib.insight import metrics
    from lib.quality import gates
    from lib.store import open_store

    if gates_only and metrics_only:
        raise click.UsageError("--gates-only and --metrics-only exclude each other")
    store = open_store()
    results = []
    if not metrics_only:
        found, missing = gates.targets(store, every, explicit)
        if found and missing:
            cli.info(f"note: skipped targets that do not exist: {', '.join(missing)}")
        results += gates.gate_results(found, missing, verbose)
    if not gates_only:
        results += metrics.key_metric_results(store, metrics.window_back(window))
    mode = "gates" if gates_only else "metrics" if metrics_only else None  # CI's gate run pages apart
    code = cli.report_checks(results, as_json, "METRICS", notify_flag=notify, mode=mode)
    if verbose and not as_json:
        print()
        cli.print_table(gates.worst_file_rows(results), [("target", "TARGET"), ("gate", "GATE"),
                                                            ("file", "WORST FILE"), ("value", "VALUE")],
                        empty="no files stand out")
    return code


if __name__ == "__main__":
    cli.run(main, check=True)
