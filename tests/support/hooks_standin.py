"""Local HTTP stand-ins for what --notify and the heartbeats reach: PagerDuty Events API v2
(POST /v2/enqueue), Slack incoming webhooks (POST /services/...) and a healthchecks.io ping
URL (GET /ping/<uuid>[/start|/fail]), on 127.0.0.1 with a free port.

Every request is recorded; `fail_with` makes every answer that HTTP status (an outage).
PagerDuty's incidents are kept per dedup_key as PagerDuty does: a trigger opens or updates,
a resolve closes.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from local_server import LocalServer

ROUTING_KEY = "e93facc04764012d7bfb002500d5d1a6"
SLACK_PATH = "/services/T0STANDIN/B0STANDIN/xoxStandInWebhookSecret42"
PING_PATH = "/ping/5e1f9f0c-7d3a-4b8e-9c6d-2f4a1b3c5d7e"


class HooksStandIn(LocalServer):
    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.incidents: dict[str, dict] = {}
        self.fail_with: int | None = None
        super().__init__(self._handler())

    @property
    def pagerduty_url(self) -> str:
        return f"{self.url}/v2/enqueue"

    @property
    def slack_url(self) -> str:
        return f"{self.url}{SLACK_PATH}"

    @property
    def ping_url(self) -> str:
        return f"{self.url}{PING_PATH}"

    def events(self) -> list[dict]:
        """The PagerDuty events received, in order."""
        return [r["body"] for r in self.requests if r["path"] == "/v2/enqueue"]

    def slack_texts(self, path: str = SLACK_PATH) -> list[str]:
        """The texts posted to one webhook (by its path), in order."""
        return [r["body"]["text"] for r in self.requests if r["path"] == path]

    def pings(self) -> list[str]:
        """The ping paths after the check's URL: '/start', '' (success), '/fail'."""
        return [kind for kind, _ in self.ping_runs()]

    def ping_runs(self) -> list[tuple[str, str | None]]:
        """The pings as (path after the check's URL, the rid of their query)."""
        found = []
        for request in self.requests:
            address = urlsplit(request["path"])
            if address.path.startswith(PING_PATH):
                found.append((address.path[len(PING_PATH):], parse_qs(address.query).get("rid", [None])[0]))
        return found

    def _record(self, method: str, path: str, body) -> tuple[int, dict | str]:
        with self.lock:
            self.requests.append({"method": method, "path": path, "body": body})
            if self.fail_with:
                return self.fail_with, {"status": "unavailable", "message": "stand-in outage"}
            if path == "/v2/enqueue":
                return self._pagerduty(body)
            if path.startswith("/services/"):
                return 200, "ok"
            if path.startswith(PING_PATH):
                return 200, "OK"
            return 404, "no such route"

    def _pagerduty(self, event: dict) -> tuple[int, dict]:
        if event.get("routing_key") != ROUTING_KEY:
            return 400, {"status": "invalid event", "message": "Event object is invalid",
                         "errors": ["Invalid routing key"]}
        key = event["dedup_key"]
        if event["event_action"] == "trigger":
            self.incidents[key] = {"status": "triggered", "payload": event["payload"]}
        elif event["event_action"] == "resolve" and key in self.incidents:
            self.incidents[key]["status"] = "resolved"
        return 202, {"status": "success", "message": "Event processed", "dedup_key": key}

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                status, answer = standin._record(method, self.path, body)
                data = (json.dumps(answer) if isinstance(answer, dict) else answer).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802 - http.server's naming
                self._answer("GET")

            def do_POST(self):  # noqa: N802
                self._answer("POST")

            def log_message(self, *args):
                pass

        return Handler
