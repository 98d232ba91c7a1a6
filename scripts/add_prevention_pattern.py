"""Learn from a reverted PR: store a prevention pattern the planner honours.

Reads the PR from GitHub (title, body, files, labels, change kind) and, for a revert PR
("Reverts owner/repo#N" or "This reverts commit ..."), the PR it reverts. The planner
then skips files that match the pattern and logs that it did. Running it again updates
the same pattern.

\b
Example (runbook, Rolling Back Changes):
    python scripts/add_prevention_pattern.py --from-pr <pr_number>
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--from-pr", "number", type=click.IntRange(min=1), required=True, help="The PR (or its revert).")
@cli.dry_run_option
@cli.json_option
def main(number: int, dry_run: bool, as_json: bool) -> int:
    from lib.adapters import github
    from lib.quality import patterns
    from lib.store import open_store

    pattern = patterns.from_pull(github.Client.from_env(), number)
    dry = cli.is_dry_run(dry_run)
    created = None
    if not dry:
        pattern, created = patterns.save(open_store(create=True), pattern)
        cli.audit("ok", pattern=pattern["id"], pr=number, created=created)
    if as_json:
        cli.print_json({**pattern, "created": created, "dry_run": dry})
        return 0
    state = "would store" if dry else ("stored" if created else "updated")
    cli.info(f"{state} prevention pattern {pattern['id']} from PR #{number}")
    signature = pattern["signature"]
    cli.print_table([{"id": pattern["id"], "pr": f"#{signature['pr']}", "kind": signature["change_kind"],
                      "files": "\n".join(signature["files"]) or "(none)", "hits": pattern["hits"]}],
                    [("id", "PATTERN"), ("pr", "PR"), ("kind", "CHANGE KIND"), ("files", "FILES"), ("hits", "HITS")])
    return 0


if __name__ == "__main__":
    cli.run(main)
