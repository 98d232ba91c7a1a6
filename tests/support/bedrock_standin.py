"""A local Bedrock Runtime Converse stand-in over HTTP, reached through AWS_ENDPOINT_URL_BEDROCK_RUNTIME.

It serves `POST /model/<modelId>/converse` in the Converse JSON shape on 127.0.0.1 (a free
port), so the real boto3 client, in process or in a script run as a subprocess, talks to it
with dummy credentials. Tests queue what it answers, in order:

    standin = BedrockStandIn().start()
    standin.reply("Done.\\n```diff\\n...\\n```", input_tokens=1200, output_tokens=300)
    standin.error(429, "ThrottlingException", "Too many requests")
    ...
    standin.requests  # every request: {"model_id", "body"}

With nothing queued it answers `default` (a callable taking the request, returning a reply
document from `converse_answer`) or, without one, a 500 that names the missing reply.

Prompt caching as Bedrock does it: the system and message blocks before a `cachePoint` are the
cached prefix. With `require_cache_point` a request without one is refused (ValidationException);
with `count_tokens` the usage of every answer is counted from the request (about 4 characters a
token), a prefix seen before read from the cache (cacheReadInputTokens), a new one written to it
(cacheWriteInputTokens), the rest as inputTokens.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from urllib.parse import unquote

from local_server import JSONHandler, LocalServer

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}


def converse_answer(text: str, input_tokens: int = 100, output_tokens: int = 50,
                    stop_reason: str = "end_turn") -> dict:
    """A Converse response document carrying one text block."""
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens,
                  "totalTokens": input_tokens + output_tokens},
        "metrics": {"latencyMs": 1},
    }


def split_at_cache_point(body: dict) -> tuple[str | None, str]:
    """(the text before the first cachePoint or None without one, the text after it) of a Converse request,
    in Bedrock's order: system blocks, then message contents."""
    blocks = list(body.get("system") or [])
    for message in body.get("messages") or []:
        blocks.extend(message.get("content") or [])
    before: list[str] = []
    for index, block in enumerate(blocks):
        if "cachePoint" in block:
            after = "".join(b.get("text", "") for b in blocks[index + 1:])
            return "".join(before), after
        before.append(block.get("text", ""))
    return None, "".join(before)


class BedrockStandIn(LocalServer):
    def __init__(self):
        self.lock = threading.Lock()
        self.answers: deque[tuple[int, dict, dict]] = deque()
        self.requests: list[dict] = []
        self.default: Callable[[dict], dict] | None = None
        self.require_cache_point = False
        self.count_tokens = False
        self.cached_prefixes: set[str] = set()
        super().__init__(self._handler())

    def env(self) -> dict:
        """The variables that send boto3's bedrock-runtime client here, with dummy credentials."""
        return {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": self.url, **CREDENTIALS}

    # ---- scripting -----------------------------------------------------------------
    def reply(self, text: str, input_tokens: int = 100, output_tokens: int = 50,
              stop_reason: str = "end_turn") -> None:
        """Queue a successful answer whose message is text."""
        with self.lock:
            self.answers.append((200, converse_answer(text, input_tokens, output_tokens, stop_reason), {}))

    def error(self, status: int, code: str, message: str = "") -> None:
        """Queue an error answer as Bedrock sends it (x-amzn-ErrorType header, JSON message)."""
        with self.lock:
            self.answers.append((status, {"message": message or code}, {"x-amzn-ErrorType": code}))

    def _answer(self, request: dict) -> tuple[int, dict, dict]:
        prefix, rest = split_at_cache_point(request["body"])
        with self.lock:
            self.requests.append(request)
            if self.require_cache_point and prefix is None:
                return 400, {"message": "bedrock stand-in: no cachePoint in the request"}, {
                    "x-amzn-ErrorType": "ValidationException"}
            status, document, headers = self.answers.popleft() if self.answers else (None, None, {})
            if status is None and self.default is not None:
                status, document = 200, self.default(request)
            if status == 200 and self.count_tokens:
                document["usage"] = self._usage(prefix, rest, document["usage"]["outputTokens"])
        if status is None:
            return 500, {"message": "bedrock stand-in: no reply queued"}, {
                "x-amzn-ErrorType": "InternalServerException"}
        return status, document, headers

    def _usage(self, prefix: str | None, rest: str, output_tokens: int) -> dict:
        """Converse usage as Bedrock counts it: cache reads and writes apart from inputTokens (lock held)."""
        usage = {"inputTokens": len(rest) // 4, "outputTokens": output_tokens,
                 "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0}
        if prefix is not None:
            usage["cacheReadInputTokens" if prefix in self.cached_prefixes else "cacheWriteInputTokens"] = (
                len(prefix) // 4)
            self.cached_prefixes.add(prefix)
        usage["totalTokens"] = sum(usage.values())
        return usage

    # ---- HTTP ----------------------------------------------------------------------
    def _handler(self):
        standin = self

        class Handler(JSONHandler):
            def do_POST(self):
                body = self.read_json()
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) != 3 or parts[0] != "model" or parts[2] != "converse":
                    self._send(404, {"message": f"unknown path {self.path}"},
                               {"x-amzn-ErrorType": "UnknownOperationException"})
                elif body is None:
                    self._send(400, {"message": "body is not JSON"}, {"x-amzn-ErrorType": "ValidationException"})
                else:
                    self._send(*standin._answer({"model_id": unquote(parts[1]), "body": body}))

            def _send(self, status: int, document: dict, headers: dict) -> None:
                self.send_json(status, document, {"x-amzn-RequestId": "standin-request", **headers})

        return Handler
