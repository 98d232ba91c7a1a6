"""The openai runtime: any OpenAI-compatible Chat Completions endpoint (DESIGN §5).

vLLM, Ollama, llama.cpp's server, a LiteLLM proxy, OpenAI itself or Bedrock's OpenAI-compatible
endpoint: `POST <base_url>/chat/completions` with plain requests, no SDK. The prompt is
lib/agents/prompting.py's, as for bedrock: one system message (files block first, then the phase's
prompt, so servers that cache prompt prefixes serve the files to the later phases) and the phase
message as the user message. 429 and 5xx are retried within the phase timeout, honouring
Retry-After. The key comes from api_key_env or api_key_secret, is sent only in the Authorization
header, and is masked out of anything the server echoes back.
"""

from __future__ import annotations

import email.utils
import logging
import os
import time

import requests

from lib.adapters import aws
from lib.agents import AgentError, prompting
from lib.agents.model import ModelRuntime
from lib.config import OPENAI_MAX_TIMEOUT
from lib.errors import ConfigError, ToolError
from lib.log import mask_secrets

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10
ERROR_TEXT_CHARS = 300
_HINTS = {
    401: "the endpoint refused the key: check api_key_env/api_key_secret of the agent",
    403: "the key may not use model {model}: check the key's permissions on the endpoint",
    404: "check base_url (it ends before /chat/completions, e.g. http://host:8000/v1) and model {model}",
}


class OpenAIRuntime(ModelRuntime):
    """One Chat Completions call per phase."""

    def __init__(self, agent: dict, **clock):
        for key in ("base_url", "model"):
            if not agent.get(key):
                raise ConfigError(f"agent {agent['name']}: runtime openai needs {key}",
                                  f"add {key}: to the agent in config/agents.yaml")
        super().__init__(agent, **clock)
        self.url = agent["base_url"].rstrip("/") + "/chat/completions"
        self.model = agent["model"]
        self.call_timeout = min(float(agent.get("timeout_seconds") or OPENAI_MAX_TIMEOUT), OPENAI_MAX_TIMEOUT)

    # ---- the key ---------------------------------------------------------------------------
    def _key(self) -> str | None:
        """The API key from its named source; None for a local server that needs none."""
        if self.agent.get("api_key_env"):
            name = self.agent["api_key_env"]
            value = os.environ.get(name, "").strip()
            if not value:
                raise AgentError(f"agent-error: {self.name}: environment variable {name} (api_key_env) is not set",
                                 f"export {name} before starting the evolution")
            return value
        if self.agent.get("api_key_secret"):
            try:
                return aws.secret_string(self.agent["api_key_secret"])
            except ToolError as failure:
                raise AgentError(f"agent-error: {self.name}: {failure.message}", failure.hint) from None
        return None

    # ---- the call --------------------------------------------------------------------------
    def request(self, prompt: prompting.Prompt) -> dict:
        return {"model": self.model, "stream": False, "max_tokens": self.max_tokens, "temperature": self.temperature,
                "messages": [{"role": "system", "content": f"{prompt.files}\n{prompt.instructions}"},
                             {"role": "user", "content": prompt.message}]}

    def invoke(self, payload: dict, timeout: float) -> dict:
        prompt = self.prompt(payload)
        key = self._key()
        answer = self._post(self.request(prompt), min(timeout, self.call_timeout), key)
        choices = answer.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        text = message.get("content") if isinstance(message.get("content"), str) else ""
        stop_reason = choice.get("finish_reason") if isinstance(choice.get("finish_reason"), str) else None
        return self.reply(self.model, text, stop_reason, usage_tokens(answer.get("usage")))

    def _post(self, body: dict, timeout: float, key: str | None) -> dict:
        """POST, retrying 429 and 5xx until the next wait would pass the deadline."""
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
        deadline = self.clock() + timeout
        attempt = 0
        while True:
            left = deadline - self.clock()
            try:
                response = requests.post(self.url, json=body, headers=headers,
                                         timeout=(min(CONNECT_TIMEOUT_SECONDS, max(left, 1)), max(left, 1)))
            except requests.Timeout:
                raise AgentError(f"timeout: {self.name}: no answer from {self.model} at {self.url} "
                                 f"within {timeout:g}s",
                                 "raise timeout_seconds of the agent (at most 3600) or use a faster model") from None
            except requests.RequestException as failure:
                raise AgentError(f"agent-error: {self.name}: cannot reach {self.url}: {type(failure).__name__}",
                                 "check base_url and that the server is running") from None
            if response.status_code == 200:
                return self._document(response, key)
            if response.status_code != 429 and response.status_code < 500:
                raise self._refused(response, key)
            attempt += 1
            delay = retry_after(response.headers.get("Retry-After"), time.time())
            delay = self.backoff(attempt) if delay is None else delay
            if self.clock() + delay >= deadline:
                raise AgentError(f"timeout: {self.name}: {self.url} still answered {response.status_code} for "
                                 f"{self.model} after {attempt} attempts within {timeout:g}s",
                                 "the server is overloaded: try later, or raise timeout_seconds of the agent")
            log.warning("%s: %s answered %d; attempt %d again in %.1fs", self.name, self.url, response.status_code,
                        attempt + 1, delay)
            self.sleep(delay)

    def _document(self, response: requests.Response, key: str | None) -> dict:
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise AgentError(f"bad-output: {self.name}: {self.url} answered 200 with a body that is not a JSON "
                             f"object{_quoted(response.text, key)}")
        return document

    def _refused(self, response: requests.Response, key: str | None) -> AgentError:
        hint = _HINTS.get(response.status_code, "check the agent's model and max_tokens in config/agents.yaml")
        return AgentError(f"agent-error: {self.name}: {self.url} answered {response.status_code} for model "
                          f"{self.model}{_quoted(_error_text(response), key)}", hint.format(model=self.model))

    def status(self) -> dict:
        return {"state": "available", "version": self.model, "capacity": "endpoint", "errors_last_hour": None,
                "detail": f"OpenAI-compatible {self.agent['base_url']}"
                          + ("" if self.priced() else ", no prices: cost counted as 0")}


def _error_text(response: requests.Response) -> str:
    try:
        error = response.json().get("error")
        return error.get("message") if isinstance(error, dict) else str(error or response.text)
    except (ValueError, AttributeError):
        return response.text


def _quoted(text: str, key: str | None) -> str:
    """Some of what the server said, on one line, masked: never the key even if the server echoes it."""
    text = " ".join((text or "").split())
    if key:
        text = text.replace(key, "***")
    text = mask_secrets(text)[:ERROR_TEXT_CHARS]
    return f": {text}" if text else ""


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now) if moment else None


def usage_tokens(usage) -> dict:
    """{input, output, cached} from Chat Completions usage: prompt_tokens counts the cached ones too
    (prompt_tokens_details.cached_tokens)."""
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("prompt_tokens_details") if isinstance(usage.get("prompt_tokens_details"), dict) else {}

    def count(source: dict, key: str) -> int:
        value = source.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    prompt = count(usage, "prompt_tokens")
    return {"input": prompt, "output": count(usage, "completion_tokens"),
            "cached": min(count(details, "cached_tokens"), prompt)}
