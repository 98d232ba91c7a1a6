"""Audit the security of this installation; findings with severity, where and the fix.

Always: permissions of evolution_history/, config and the MCP config; plaintext secrets
(AWS keys, GitHub tokens) in config, the MCP config and env files, shown masked; MCP
servers run with `python -m` that would import the mcp/ shim. --full adds the backup
bucket (public access block, encryption, versioning), secret and IAM access key age,
log groups without retention and branch protection on GitHub. The count of findings is
stored for the SecurityGateFailures metric. Exit 0 OK, 1 warnings, 2 critical findings,
3 a rule could not be checked. --notify sends critical findings to page-security.

\b
Example (runbook, Weekly Tasks):
    python scripts/security_audit.py --full
"""

import _bootstrap  # noqa: F401
import click

from lib import cli


@click.command(help=__doc__)
@click.option("--full", is_flag=True, help="Also AWS (bucket, secrets, IAM keys, log groups) and GitHub.")
@cli.json_option
@cli.notify_option
def main(full: bool, as_json: bool, notify: bool) -> int:
    from lib.ops import security_audit

    document, report = security_audit.audit(full)
    code = cli.conclude(report, notify, mode="full" if full else None)  # before printing; its own incident
    if as_json:
        cli.print_json(document)
    else:
        click.echo(report.first_line())
        cli.print_table(document["findings"], [("severity", "SEVERITY"), ("rule", "RULE"), ("where", "WHERE"),
                                               ("detail", "FINDING"), ("fix", "FIX")], empty="no findings")
        for problem in document["errors"]:
            cli.info(f"could not check {problem['rule']}: {problem['error']}")
        for item in document["skipped"]:
            cli.info(f"skipped {item['rule']}: {item['reason']}")
    return code


if __name__ == "__main__":
    cli.run(main, check=True)
