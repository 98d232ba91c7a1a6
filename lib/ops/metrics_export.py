"""export_metrics.py: one snapshot of the key metrics, rendered to stdout or a file, or put in CloudWatch."""

from __future__ import annotations

from pathlib import Path

import click

from lib import cli
from lib.insight import exposition, metrics
from lib.store import open_store


def export(fmt: str, output: Path | None, window: str, dry_run: bool) -> None:
    """Under a lock per format, for cron. CloudWatch: audited unless dry, with a table of what was put
    (not under cron, every 5 minutes: see cli.quiet)."""
    with cli.lock(f"export_metrics-{fmt}"):
        document = exposition.snapshot(open_store(), metrics.window_back(window))
        if fmt != "cloudwatch":
            text = exposition.render(document, fmt)
            if output is None:
                click.echo(text, nl=False)
            else:
                exposition.write(text, output)
            return
        sent = exposition.put_cloudwatch(document, dry_run)
    if not dry_run:
        cli.audit("ok" if sent["sent"] else "nothing to send", namespace=sent["namespace"],
                  metrics=[m["MetricName"] for m in sent["metrics"]])
    if not cli.report_wanted(important=dry_run):
        return
    verb = "would put" if dry_run else "put"
    cli.info(f"{verb} {len(sent['metrics'])} metrics in CloudWatch namespace {sent['namespace']}")
    cli.print_table(sent["metrics"], [("MetricName", "METRIC"), ("Value", "VALUE"), ("Unit", "UNIT")],
                    empty="no metric has data in the window; nothing sent")
