"""Health check of security: the result and age of the last security_audit.py run."""

from __future__ import annotations

from lib.health import check
from lib.quality.security_rules import META_DETAIL_KEY
from lib.store import open_store
from lib.timeparse import from_iso, utcnow

MAX_AGE_DAYS = 8  # the runbook audits weekly (Thursday)


@check("security_audit", "security", groups=("full",))
def security_audit(context: dict) -> tuple[str, str]:

    store = open_store()
    last = store.get_meta(META_DETAIL_KEY) if store.exists else None
    if not last:
        return "warning", "no security audit yet: python scripts/security_audit.py --full"
    age = (utcnow() - from_iso(last["time"])).days
    scope = "full" if last.get("full") else "local rules only"
    summary = (f"last audit {age} day(s) ago ({scope}): {last.get('critical', 0)} critical, "
               f"{last.get('warning', 0)} warning finding(s)")
    if last.get("critical"):
        return "critical", summary + "; python scripts/security_audit.py --full shows them"
    if age > MAX_AGE_DAYS or last.get("warning") or last.get("errors"):
        return "warning", summary + ("; audit again" if age > MAX_AGE_DAYS else "")
    return "ok", summary
