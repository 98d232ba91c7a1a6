"""--notify: a check command's result to the people of its alert action (DESIGN §9).

WARNING goes to notify-team, CRITICAL to notify-oncall (security_audit's to page-security);
UNKNOWN, a check that could not ask something, is the team's to look at. PagerDuty gets an
Events v2 trigger keyed `tdev:<host>:<command>[:<mode>]` (each schedule of a command its own
incident: health_check and health_check:full) and, once that schedule is OK again, a resolve
for every incident it opened; Slack gets one message per status change, and a room
told of a problem hears when it ends.

The state (evolution_history/notify-state.json, versioned) records per schedule and route
what that route was last told. It advances only when a delivery succeeded, so a failed one is tried
again on the next run; a delivery never changes the check's exit code.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass

from lib import checks, config, paths
from lib.adapters import alert_delivery as deliver
from lib.adapters import aws
from lib.errors import ConfigError, ToolError, UsageError
from lib.fsutil import atomic_write
from lib.log import masked
from lib.timeparse import iso, utcnow

PAGE_SECURITY_COMMANDS = {"security_audit"}
SLACK_ICONS = {checks.OK: ":white_check_mark:", checks.WARNING: ":warning:", checks.CRITICAL: ":red_circle:",
               checks.UNKNOWN: ":grey_question:"}
SLACK_LINES = 10
PAGERDUTY_SUMMARY_LIMIT = 1024  # Events API v2 refuses a longer summary


@dataclass(frozen=True)
class Route:
    """One destination of an alert action; ref says where its credential lives (env:NAME or secret:NAME)."""

    kind: str  # pagerduty | slack
    ref: str
    cloudwatch_ref: str | None = None


def action_for(command: str, status: str) -> str | None:
    """The alert action of a check's status; None for OK."""
    if status == checks.OK:
        return None
    if status == checks.CRITICAL:
        return "page-security" if command in PAGE_SECURITY_COMMANDS else "notify-oncall"
    return "notify-team"


def _ref(fields: dict, name: str) -> str | None:
    if f"{name}_env" in fields:
        return f"env:{fields[f'{name}_env']}"
    if f"{name}_secret" in fields:
        return f"secret:{fields[f'{name}_secret']}"
    return None


def routes(settings: dict, action: str) -> list[Route]:
    """The routes notify.yaml gives an alert action."""
    found = []
    for entry in settings["routes"].get(action, []):
        if "pagerduty" in entry:
            fields = entry["pagerduty"]
            found.append(Route("pagerduty", _ref(fields, "routing_key"), _ref(fields, "cloudwatch_url")))
        else:
            found.append(Route("slack", _ref(entry["slack"], "webhook_url")))
    return found


def credential(ref: str) -> str:
    """The value behind a reference: the environment variable or the Secrets Manager secret."""
    source, name = ref.split(":", 1)
    if source == "secret":
        return aws.secret_string(name)
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set", f"export {name} (config/notify.yaml names it)")
    return value


def pagerduty_url(settings: dict) -> str:
    return os.environ.get("TDEV_PAGERDUTY_URL", "").strip() or settings["pagerduty_url"]


def cloudwatch_urls() -> dict[str, list[tuple[str, str]]]:
    """Per alert action, the PagerDuty CloudWatch integration URLs of its routes as (ref, url)."""
    settings = config.notify()
    if settings is None:
        return {}
    found: dict[str, list[tuple[str, str]]] = {}
    for action in settings["routes"]:
        for route in routes(settings, action):
            if route.cloudwatch_ref:
                url = credential(route.cloudwatch_ref)
                if not url.startswith("https://"):
                    raise ConfigError(f"the CloudWatch integration URL in {route.cloudwatch_ref} is not https",
                                      "SNS delivers to https endpoints; copy the URL PagerDuty shows")
                found.setdefault(action, []).append((route.cloudwatch_ref, url))
    return found


# ---- state --------------------------------------------------------------------------------------

STATE_VERSION = 2  # 1 (no version): {"commands": {command: entry}}; 2: {"checks": {command[:mode]: entry}}


def state_path():
    return paths.history_dir() / "notify-state.json"


def check_name(command: str, mode: str | None = None) -> str:
    """What one schedule of a command is called in the state and in its dedup key: health_check:full."""
    return f"{command}:{mode}" if mode else command


def _entry_shape_ok(entry) -> bool:
    if not isinstance(entry, dict):
        return False
    opened, told = entry.get("pagerduty", {}), entry.get("slack", {})
    return (isinstance(opened, dict) and isinstance(told, dict)
            and all(isinstance(incident, dict) and isinstance(incident.get("dedup_key"), str)
                    and isinstance(incident.get("severity"), str) for incident in opened.values())
            and all(isinstance(status, str) for status in told.values()))


def upgraded(raw) -> dict | None:
    """The state in this version's shape, or None when it is not a state file of a known version.

    Version 1 keyed entries by command alone. Its entries become those of the commands' basic
    schedules, whose dedup key has not changed, and every incident keeps the key it was opened
    under: an incident opened before the upgrade is resolved when that command is OK again.
    """
    if not isinstance(raw, dict):
        return None
    version = raw.get("version", 1)
    if version == 1 and isinstance(raw.get("commands"), dict):
        raw = {"version": STATE_VERSION, "checks": raw["commands"]}
    elif version != STATE_VERSION or not isinstance(raw.get("checks"), dict):
        return None
    if not all(isinstance(name, str) and _entry_shape_ok(entry) for name, entry in raw["checks"].items()):
        return None
    for entry in raw["checks"].values():
        entry.setdefault("pagerduty", {})
        entry.setdefault("slack", {})
    return raw


def _set_aside(path, reason: str) -> str:
    """Rename a corrupt state file to <name>.corrupt-<stamp> (kept for a post-mortem); the warning to print."""
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    aside, taken = path.with_name(f"{path.name}.corrupt-{stamp}"), 1
    while aside.exists():
        taken += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{taken}")
    os.replace(path, aside)
    return (f"warning: --notify: {path} was corrupt ({reason}); set aside as {aside.name} and started afresh; "
            "an incident it recorded as open must be resolved by hand in PagerDuty")


@contextlib.contextmanager
def _locked_state(warnings: list[str]) -> Iterator[dict]:
    """The state, read and written under a blocking lock: two check commands may finish at once.

    A corrupt file is set aside with a warning and the run goes on with an empty state, so that a
    new problem is still delivered (DESIGN §9).
    """
    lock_file = paths.locks_dir() / "notify.lock"
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    path = state_path()
    with open(lock_file, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            state = upgraded(json.loads(path.read_text(encoding="utf-8")))
            reason = "not a notify state of a known version"
        except FileNotFoundError:
            state, reason = {"version": STATE_VERSION, "checks": {}}, ""
        except (UnicodeDecodeError, ValueError, RecursionError) as bad:
            state, reason = None, f"{type(bad).__name__}: {bad}"[:200]
        except OSError as bad:
            raise ToolError(f"{path}: unreadable ({bad.strerror})", "fix its permissions; nothing was sent") from None
        if state is None:
            warnings.append(_set_aside(path, reason))
            state = {"version": STATE_VERSION, "checks": {}}
        yield state
        atomic_write(path, json.dumps(state, indent=2, sort_keys=True) + "\n", mode=0o600)


# ---- sending ------------------------------------------------------------------------------------


def send(command: str, report: checks.Report, mode: str | None = None) -> list[str]:
    """Deliver the report to its routes; lines for stderr (a note, or what failed and will be retried).

    mode names the schedule (health_check --full: full), whose incident is its own (DESIGN §9).
    """
    settings = config.notify()
    if settings is None:
        return [f"note: --notify: {config.path_of('notify')} does not exist; nothing was sent"]
    action = action_for(command, report.status)
    wanted = routes(settings, action) if action else []
    host = socket.gethostname()
    name = check_name(command, mode)
    problems: list[str] = []
    with _locked_state(problems) as state:
        entry = state["checks"].setdefault(name, {"pagerduty": {}, "slack": {}})
        outbox = _pagerduty_sends(settings, name, host, report, wanted, entry["pagerduty"])
        outbox += _slack_sends(settings, host, report, wanted, entry["slack"])
        for describe, attempt, advance in outbox:
            try:
                attempt()
            except ToolError as failure:  # DeliveryError, a missing variable or secret
                problems.append(f"warning: --notify: {describe}: {failure}; tried again next run")
            else:
                advance()
        entry.update(status=report.status, checked_at=iso())
    return problems


def _pagerduty_sends(settings: dict, name: str, host: str, report: checks.Report, wanted: list[Route],
                     opened: dict) -> list:
    """Trigger each wanted route not yet told this severity; resolve every opened incident when OK."""
    url, timeout = pagerduty_url(settings), float(settings["timeout_seconds"])
    sends = []
    if report.status == checks.OK:
        for ref, incident in opened.items():
            sends.append((f"PagerDuty resolve ({ref})",
                          lambda ref=ref, key=incident["dedup_key"]: deliver.pagerduty_event(
                              url, credential(ref), "resolve", key, timeout=timeout),
                          lambda ref=ref: opened.pop(ref)))
        return sends
    severity = checks.CRITICAL if report.status == checks.CRITICAL else checks.WARNING
    dedup_key = f"tdev:{host}:{name}"
    payload = {"summary": report.status_line()[:PAGERDUTY_SUMMARY_LIMIT], "source": host, "severity": severity,
               "custom_details": masked({"command": name, "status": report.status,
                                         "failing_checks": report.failing})}
    for route in wanted:
        if route.kind == "pagerduty" and opened.get(route.ref, {}).get("severity") != severity:
            sends.append((f"PagerDuty trigger ({route.ref})",
                          lambda ref=route.ref: deliver.pagerduty_event(url, credential(ref), "trigger", dedup_key,
                                                                        payload, timeout),
                          lambda ref=route.ref: opened.update({ref: {"severity": severity, "dedup_key": dedup_key}})))
    return sends


def _slack_sends(settings: dict, host: str, report: checks.Report, wanted: list[Route], told: dict) -> list:
    """One message per status change to the action's rooms and to the rooms told of the last problem."""
    timeout = float(settings["timeout_seconds"])
    refs = [route.ref for route in wanted if route.kind == "slack"]
    refs += [ref for ref, status in told.items() if status != checks.OK and ref not in refs]
    text = slack_text(host, report)
    sends = []
    for ref in refs:
        if told.get(ref) != report.status:
            sends.append((f"Slack post ({ref})",
                          lambda ref=ref: deliver.slack_post(credential(ref), text, timeout),
                          lambda ref=ref: _told(told, ref, report.status)))
    return sends


def _told(told: dict, ref: str, status: str) -> None:
    if status == checks.OK:
        told.pop(ref, None)
    else:
        told[ref] = status


def slack_text(host: str, report: checks.Report) -> str:
    """The status line with the host, then one line per failing item (at most ten)."""
    lines = [f"{SLACK_ICONS[report.status]} {report.status_line()} on {host}"]
    lines += [f"• {item['name']}: {item['summary']}" for item in report.failing[:SLACK_LINES]]
    if len(report.failing) > SLACK_LINES:
        lines.append(f"… and {len(report.failing) - SLACK_LINES} more")
    return masked("\n".join(lines))


# ---- notify.py --test ---------------------------------------------------------------------------


def send_test(only: str | None = None) -> list[dict]:
    """A test event through every route of notify.yaml (or the one named): a PagerDuty trigger then its
    resolve, a Slack message. One row per destination: route, kind, credential, ok, and what each step
    answered. The state file is left alone: a test opens nothing that a check would resolve.
    """
    settings = config.notify()
    if settings is None:
        raise ConfigError(f"{config.path_of('notify')} does not exist",
                          "copy config/notify.yaml.example and name the keys' variables or secrets")
    configured = [action for action in config.ALERT_ACTIONS if action in settings["routes"]]
    if only is not None and only not in configured:
        raise UsageError(f"{config.path_of('notify')} has no route {only}",
                         f"choose one of {', '.join(configured) or '(none configured)'}")
    host = socket.gethostname()
    rows = []
    for action in [only] if only else configured:
        destinations = routes(settings, action)
        if not destinations:
            rows.append({"route": action, "kind": "", "credential": "", "ok": False,
                         "answers": ["no destination configured"]})
        for route in destinations:
            steps = (_pagerduty_test(settings, route, action, host) if route.kind == "pagerduty"
                     else _slack_test(settings, route, action, host))
            answers, ok = [], True
            for step, attempt in steps:
                if not ok:
                    answers.append(f"{step}: not sent")
                    continue
                try:
                    answers.append(f"{step}: {attempt()}")
                except ToolError as failure:
                    ok = False
                    answers.append(f"{step}: failed: {failure}")
            rows.append({"route": action, "kind": route.kind, "credential": _named(route.ref), "ok": ok,
                         "answers": answers})
    return rows


def _named(ref: str) -> str:
    """`env NAME`, `secret NAME`: a reference as shown (the masking takes `secret:NAME` for a secret)."""
    return ref.replace(":", " ", 1)


def _test_summary(action: str, host: str) -> str:
    return f"T-Developer notify test: route {action} on {host} (python scripts/notify.py --test); no action needed"


def _pagerduty_test(settings: dict, route: Route, action: str, host: str) -> list:
    """Trigger, then resolve at once, an info-severity incident of its own key (no check ever uses it)."""
    url, timeout = pagerduty_url(settings), float(settings["timeout_seconds"])
    dedup_key = f"tdev:{host}:notify-test:{action}"
    payload = {"summary": _test_summary(action, host), "source": host, "severity": "info",
               "custom_details": {"route": action, "test": True}}
    return [("trigger", lambda: deliver.pagerduty_event(url, credential(route.ref), "trigger", dedup_key, payload,
                                                        timeout)),
            ("resolve", lambda: deliver.pagerduty_event(url, credential(route.ref), "resolve", dedup_key,
                                                        timeout=timeout))]


def _slack_test(settings: dict, route: Route, action: str, host: str) -> list:
    text = f":information_source: {_test_summary(action, host)}"
    return [("message", lambda: deliver.slack_post(credential(route.ref), text, float(settings["timeout_seconds"])))]
