"""Outbound alerts over HTTP: PagerDuty Events API v2, Slack incoming webhooks, healthchecks.io pings.

Every call has a timeout and raises DeliveryError on any failure. A routing key or a webhook
URL is itself the credential, so no message of this module names either: an error says what
was sent, the host and the HTTP status (with the secret cut out of any answer it quotes).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from lib.errors import ExternalError
from lib.log import mask_secrets

USER_AGENT = "t-developer-ops"


class DeliveryError(ExternalError):
    """A notification or ping did not arrive; the caller reports it and tries again next run."""


def _request(method: str, url: str, timeout: float, secrets: tuple[str, ...] = (), **kwargs) -> str:
    """One HTTP request; on a 2xx what it answered (`HTTP 202: ...`), else DeliveryError (the caller says
    what was sent) naming the host and the status. Neither names the URL or a secret."""
    import requests

    host = urlsplit(url).hostname or "?"
    try:
        response = requests.request(method, url, timeout=timeout, headers={"User-Agent": USER_AGENT}, **kwargs)
    except requests.Timeout:
        raise DeliveryError(f"{host} did not answer within {timeout:g}s") from None
    except requests.RequestException as failure:
        raise DeliveryError(f"cannot reach {host} ({type(failure).__name__})") from None
    answer = " ".join(response.text.split())[:200]
    for secret in (url, urlsplit(url).path, *secrets):
        if secret:
            answer = answer.replace(secret, "***")
    said = f"HTTP {response.status_code}" + (f": {mask_secrets(answer)}" if answer else "")
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"{host} answered {said}")
    return said


def pagerduty_event(url: str, routing_key: str, action: str, dedup_key: str, payload: dict | None = None,
                    timeout: float = 10) -> str:
    """Send an Events API v2 event: trigger (with payload) or resolve, keyed by dedup_key; what PagerDuty answered."""
    event = {"routing_key": routing_key, "event_action": action, "dedup_key": dedup_key}
    if payload is not None:
        event["payload"] = payload
    return _request("POST", url, timeout, (routing_key,), json=event)


def slack_post(webhook_url: str, text: str, timeout: float = 10) -> str:
    """Post one message to a Slack incoming webhook; what Slack answered."""
    return _request("POST", webhook_url, timeout, json={"text": text})


def ping(url: str, timeout: float = 5, params: dict | None = None) -> str:
    """GET a healthchecks.io-style ping URL (`<url>/start`, `<url>`, `<url>/fail`), with its query (rid)."""
    return _request("GET", url, timeout, params=params)
