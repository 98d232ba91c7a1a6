"""A local OpenAI-compatible Chat Completions stand-in over HTTP, as vLLM, Ollama or a LiteLLM proxy serve it.

It serves `POST <anything>/chat/completions` on 127.0.0.1 (a free port); an agent's base_url is
`standin.base_url` (`.../v1`). Tests queue what it answers, in order:

    standin = OpenAIStandIn().start()
    standin.reply("Done.\\n```diff\\n...\\n```", prompt_tokens=1200, completion_tokens=300, cached_tokens=1000)
    standin.error(429, "slow down", retry_after="0")
    gate = standin.hold()            # the next request waits until the test calls gate.set()
    standin.requests                 # every request: {"path", "headers", "body"}

With nothing queued it answers `default` (a callable taking the request, returning the reply text),
or a 500. `phase_replies(outputs)` is a default that answers each phase of a cycle (it reads the
phase from the prompt) with a fenced block holding that phase's output.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable

from local_server import JSONHandler, LocalServer


def completion(text: str, prompt_tokens: int = 100, completion_tokens: int = 50, cached_tokens: int = 0,
               finish_reason: str = "stop") -> dict:
    """A Chat Completions response document with one choice."""
    return {"id": "chatcmpl-standin", "object": "chat.completion", "model": "standin",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens,
                      "prompt_tokens_details": {"cached_tokens": cached_tokens}}}


def phase_of(request: dict) -> str:
    """The phase a request is for, from the phase message's first line (`# Phase: <phase> ...`)."""
    message = request["body"]["messages"][-1]["content"]
    return message.split("# Phase: ", 1)[1].split()[0]


def phase_replies(outputs: dict) -> Callable[[dict], str]:
    """A default answering each phase with its output: a ```diff block for an implement patch, else ```json."""
    def answer(request: dict) -> str:
        output = outputs[phase_of(request)]
        if "patch" in output:
            return f"The change.\n```diff\n{output['patch']}```\n"
        return f"Here it is.\n```json\n{json.dumps(output)}\n```\n"

    return answer


class OpenAIStandIn(LocalServer):
    def __init__(self):
        self.lock = threading.Lock()
        self.answers: deque = deque()
        self.requests: list[dict] = []
        self.default: Callable[[dict], str] | None = None
        self.held: list[threading.Event] = []
        super().__init__(self._handler())

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    # ---- scripting -----------------------------------------------------------------
    def reply(self, text: str, prompt_tokens: int = 100, completion_tokens: int = 50, cached_tokens: int = 0,
              finish_reason: str = "stop") -> None:
        with self.lock:
            self.answers.append((200, completion(text, prompt_tokens, completion_tokens, cached_tokens,
                                                 finish_reason), {}))

    def error(self, status: int, message: str, retry_after: str | None = None) -> None:
        """Queue an error answer in the OpenAI shape, with a Retry-After header when given."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self.lock:
            self.answers.append((status, {"error": {"message": message, "type": "error"}}, headers))

    def hold(self) -> threading.Event:
        """The next request is answered only once the returned event is set (by the test, never by a clock)."""
        gate = threading.Event()
        with self.lock:
            self.answers.append(("hold", gate, {}))
            self.held.append(gate)
        return gate

    def release_all(self) -> None:
        for gate in self.held:
            gate.set()

    def stop(self) -> None:
        self.release_all()
        super().stop()

    def _answer(self, request: dict) -> tuple[int, dict, dict]:
        with self.lock:
            self.requests.append(request)
            answer = self.answers.popleft() if self.answers else None
        if answer and answer[0] == "hold":
            answer[1].wait()
            return 200, completion("```json\n{}\n```"), {}
        if answer:
            return answer
        if self.default is not None:
            return 200, completion(self.default(request)), {}
        return 500, {"error": {"message": "openai stand-in: no reply queued"}}, {}

    # ---- HTTP ----------------------------------------------------------------------
    def _handler(self):
        standin = self

        class Handler(JSONHandler):
            def do_POST(self):
                body = self.read_json()
                if not self.path.split("?")[0].endswith("/chat/completions"):
                    self.send_json(404, {"error": {"message": f"unknown path {self.path}"}}, {})
                elif body is None:
                    self.send_json(400, {"error": {"message": "body is not JSON"}}, {})
                else:
                    self.send_json(*standin._answer({"path": self.path, "headers": dict(self.headers), "body": body}))

        return Handler
