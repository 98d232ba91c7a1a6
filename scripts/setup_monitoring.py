"""Create or update the CloudWatch dashboards (TDeveloper-Main, -Agent, -Cost, -Security), one
alarm per config/alerts.yaml entry, and the SNS topic of each alert action (settings.yaml
aws.sns_topics), subscribed over HTTPS to the PagerDuty CloudWatch integration URLs that
config/notify.yaml names (cloudwatch_url_env / cloudwatch_url_secret of a pagerduty route).
Safe to run again: what already matches is left alone.

\b
Example (README, set-up):
    python scripts/setup_monitoring.py --dry-run
    python scripts/setup_monitoring.py
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@cli.dry_run_option
@cli.json_option
def main(dry_run: bool, as_json: bool) -> int:
    from lib.ops import monitoring

    dry = cli.is_dry_run(dry_run)
    changes = monitoring.setup(dry_run=dry)
    changed = [c for c in changes if c["change"] != "unchanged"]
    cli.audit("dry-run" if dry else "ok", changes=[f"{c['kind']} {c['name']}: {c['change']}" for c in changed])
    if as_json:
        cli.print_json({"dry_run": dry, "changes": changes})
        return 0
    cli.print_table(changes, [("kind", "KIND"), ("name", "NAME"), ("change", "CHANGE"), ("detail", "DETAIL")])
    cli.info(f"{len(changed)} of {len(changes)} resources {'would change' if dry else 'changed'}")
    return 0


if __name__ == "__main__":
    cli.run(main)
