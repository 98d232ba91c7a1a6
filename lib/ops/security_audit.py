"""security_audit.py's action: the rules of lib/quality/security_rules.py run under the command's lock, their
result recorded for health_check.py and the SecurityGateFailures metric."""

from __future__ import annotations

from lib import checks, cli
from lib.quality import security_rules


def audit(full: bool) -> tuple[dict, checks.Report]:
    """The audit's document and its plugin report; the weekly cron run and a manual one must not overlap."""
    with cli.lock("security_audit"):
        document = security_rules.run(full)
        security_rules.record(document)
    return document, security_rules.report(document)
