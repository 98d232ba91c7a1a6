"""A small local GitHub REST stand-in for subprocess tests (reached through GITHUB_API_URL).

It keeps pull requests, labels, files and branch protection in memory, checks the token,
paginates with Link headers and can simulate a rate limit. Tests add routes with
`standin.route(method, pattern)(handler)`; a handler gets (standin, match, query, body)
and returns (status, json_body) or (status, json_body, extra_headers).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

from local_server import LocalServer

TOKEN = "ghp_standinTOKEN0123456789abcdefghijkl"


class GitHubStandIn(LocalServer):
    def __init__(self, repository: str = "acme/widgets", token: str = TOKEN):
        self.repository = repository
        self.token = token
        self.lock = threading.RLock()
        self.pulls: dict[int, dict] = {}
        self.files: dict[int, list[dict]] = {}
        self.protection: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict | None, dict]] = []
        self.rate_limited = False
        self.next_number = 1
        self.routes: list[tuple[str, re.Pattern, object]] = []
        self._default_routes()
        super().__init__(self._handler())

    def env(self) -> dict:
        return {"GITHUB_API_URL": self.url, "GITHUB_TOKEN": self.token, "GITHUB_REPOSITORY": self.repository}

    # ---- seeding -------------------------------------------------------------------
    def add_pull(self, **fields) -> dict:
        with self.lock:
            number = fields.pop("number", None) or self.next_number
            self.next_number = max(self.next_number, number + 1)
            owner, _ = self.repository.split("/")
            pull = {
                "number": number,
                "title": f"PR {number}",
                "body": "",
                "state": "open",
                "merged_at": None,
                "closed_at": None,
                "created_at": "2024-01-01T00:00:00Z",
                "labels": [],
                "head": {"ref": f"branch-{number}", "sha": f"{number:040d}"},
                "base": {"ref": "main"},
                "user": {"login": owner},
                "html_url": f"https://github.com/{self.repository}/pull/{number}",
                "merge_commit_sha": None,
                **fields,
            }
            pull["labels"] = [{"name": x} if isinstance(x, str) else x for x in pull["labels"]]
            self.pulls[number] = pull
            return pull

    # ---- routing -------------------------------------------------------------------
    def route(self, method: str, pattern: str):
        def register(handler):
            self.routes.insert(0, (method, re.compile(f"^{pattern}$"), handler))
            return handler

        return register

    def _default_routes(self) -> None:
        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"

        @self.route("GET", "/rate_limit")
        def rate_limit(s, m, q, b):
            return 200, {"resources": {"core": {"limit": 5000, "remaining": 4999, "reset": 1893456000}}}

        @self.route("GET", repo)
        def get_repo(s, m, q, b):
            return 200, {"full_name": f"{m['owner']}/{m['repo']}", "default_branch": "main"}

        @self.route("POST", repo + "/pulls")
        def create_pull(s, m, q, b):
            for field in ("title", "head", "base"):
                if not b or field not in b:
                    return 422, {"message": "Validation Failed", "errors": [{"field": field, "code": "missing"}]}
            return 201, s.add_pull(title=b["title"], body=b.get("body", ""), head={"ref": b["head"], "sha": "0" * 40},
                                   base={"ref": b["base"]})

        @self.route("GET", repo + "/pulls")
        def list_pulls(s, m, q, b):
            state = q.get("state", "open")
            pulls = [p for p in sorted(s.pulls.values(), key=lambda p: -p["number"])
                     if state == "all" or p["state"] == state]
            return s.page(pulls, q)

        @self.route("GET", repo + r"/pulls/(?P<number>\d+)")
        def get_pull(s, m, q, b):
            pull = s.pulls.get(int(m["number"]))
            return (200, pull) if pull else (404, {"message": "Not Found"})

        @self.route("GET", repo + r"/pulls/(?P<number>\d+)/files")
        def pull_files(s, m, q, b):
            if int(m["number"]) not in s.pulls:
                return 404, {"message": "Not Found"}
            return s.page(s.files.get(int(m["number"]), []), q)

        @self.route("POST", repo + r"/issues/(?P<number>\d+)/labels")
        def add_labels(s, m, q, b):
            pull = s.pulls.get(int(m["number"]))
            if not pull:
                return 404, {"message": "Not Found"}
            names = b.get("labels", b) if isinstance(b, dict) else b
            have = {label["name"] for label in pull["labels"]}
            pull["labels"] += [{"name": n} for n in names if n not in have]
            return 200, pull["labels"]

        @self.route("GET", repo + "/issues")
        def list_issues(s, m, q, b):
            wanted = set(filter(None, q.get("labels", "").split(",")))
            state = q.get("state", "open")
            items = []
            for pull in sorted(s.pulls.values(), key=lambda p: -p["number"]):
                names = {label["name"] for label in pull["labels"]}
                if wanted <= names and (state == "all" or pull["state"] == state):
                    items.append({**pull, "pull_request": {"merged_at": pull["merged_at"], "url": pull["html_url"]}})
            return s.page(items, q)

        @self.route("GET", repo + r"/branches/(?P<branch>[^/]+)/protection")
        def protection(s, m, q, b):
            rule = s.protection.get(m["branch"])
            return (200, rule) if rule else (404, {"message": "Branch not protected"})

    def page(self, items: list, query: dict):
        per_page = int(query.get("per_page", 30))
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * per_page: page * per_page]
        headers = {}
        if page * per_page < len(items):
            headers["Link"] = f'<{self.url}{self._path}?{self._next_query(query, page + 1)}>; rel="next"'
        return 200, chunk, headers

    @staticmethod
    def _next_query(query: dict, page: int) -> str:
        from urllib.parse import urlencode

        return urlencode({**query, "page": page})

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self, method: str):
                url = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                standin.requests.append((method, url.path, body, dict(self.headers)))
                auth = self.headers.get("Authorization", "")
                if auth not in (f"Bearer {standin.token}", f"token {standin.token}"):
                    return self._reply(401, {"message": "Bad credentials"})
                if standin.rate_limited:
                    return self._reply(403, {"message": "API rate limit exceeded"},
                                       {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1893456000"})
                for verb, pattern, handler in standin.routes:
                    match = pattern.match(url.path)
                    if verb == method and match:
                        with standin.lock:
                            standin._path = url.path
                            result = handler(standin, match.groupdict(), query, body)
                        return self._reply(*result)
                return self._reply(404, {"message": "Not Found"})

            def _reply(self, status, document, headers=None):
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-RateLimit-Remaining", "4999")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def do_PATCH(self):
                self._serve("PATCH")

            def do_PUT(self):
                self._serve("PUT")

            def do_DELETE(self):
                self._serve("DELETE")

        return Handler
