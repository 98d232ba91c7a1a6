"""Check the health of T-Developer: every registered check runs at once, each with its own
timeout. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

\b
Examples (runbook, Morning Checklist; Recovery Procedures):
    python scripts/health_check.py --full
    python scripts/health_check.py --post-recovery
    python scripts/health_check.py --full --notify    # cron: WARNING/CRITICAL reach people
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--full", is_flag=True, help="Also the slower checks: AWS, agents, GitHub, MCP, backups, metrics.")
@click.option("--post-recovery", is_flag=True, help="Also the checks after a restore: verify, agents, locks.")
@click.option("--timeout", type=click.FloatRange(min=0.1), help="Per-check timeout in seconds (default: settings).")
@cli.json_option
@cli.notify_option
def main(full: bool, post_recovery: bool, timeout, as_json: bool, notify: bool) -> int:
    from lib import health

    groups = {"basic"} | ({"full"} if full else set()) | ({"post-recovery"} if post_recovery else set())
    default = timeout or health.default_timeout()
    results = health.run(health.select(groups), {"full": full}, default_timeout=default)
    mode = "+".join(sorted(groups - {"basic"})) or None  # health_check:full pages apart (DESIGN §9)
    return cli.report_checks(results, as_json, "HEALTH", timings=True, notify_flag=notify, mode=mode)


if __name__ == "__main__":
    cli.run(main, check=True)
