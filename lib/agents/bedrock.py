"""The bedrock runtime: the built-in model agent on the Bedrock Runtime Converse API (DESIGN §5).

The prompt is lib/agents/prompting.py's: the system blocks are the files block, a cachePoint
(so the later phases of a cycle read the files from Bedrock's prompt cache), then the phase's
prompt (lib/agents/prompts/<phase>.md, or the agent's prompt_file); the phase message is the user
message. The SDK never retries the call (a model call that timed out must not be paid twice);
this runtime retries throttling itself, with backoff, inside the phase timeout.
"""

from __future__ import annotations

import logging
import math

from lib.adapters import aws
from lib.agents import AgentError, prompting
from lib.agents.model import ModelRuntime
from lib.errors import ConfigError
from lib.log import mask_secrets

log = logging.getLogger(__name__)

#: Bedrock's answers while the model is busy or warming up: worth waiting for within the phase timeout.
RETRYABLE_CODES = frozenset({"ThrottlingException", "ServiceUnavailableException", "ModelNotReadyException"})
CACHE_POINT = {"cachePoint": {"type": "default"}}
_HINTS = {
    "AccessDeniedException": "the identity needs bedrock:InvokeModel on {model}, and access to the model must be "
                             "enabled in the Bedrock console of {region}",
    "ValidationException": "check model_id {model} and max_tokens in config/agents.yaml (the model must offer "
                           "Converse in {region})",
    "ResourceNotFoundException": "model {model} is not offered in {region}: check model_id in config/agents.yaml",
}


# ---- the runtime ----------------------------------------------------------------------------

class BedrockRuntime(ModelRuntime):
    """One Converse call per phase."""

    def __init__(self, agent: dict, **clock):
        if not agent.get("model_id"):
            raise ConfigError(f"agent {agent['name']}: runtime bedrock needs model_id",
                              "add model_id: <Bedrock model id> to the agent in config/agents.yaml")
        super().__init__(agent, **clock)
        self.model_id = agent["model_id"]
        self.cache_prompt = bool(agent.get("cache_prompt", True))

    def request(self, prompt: prompting.Prompt) -> dict:
        """The Converse request: files block, cachePoint, phase prompt as system; the phase message as user."""
        system = [{"text": prompt.files}, *([CACHE_POINT] if self.cache_prompt else []),
                  {"text": prompt.instructions}]
        return {"modelId": self.model_id, "system": system,
                "messages": [{"role": "user", "content": [{"text": prompt.message}]}],
                "inferenceConfig": {"maxTokens": self.max_tokens, "temperature": self.temperature}}

    def invoke(self, payload: dict, timeout: float) -> dict:
        prompt = self.prompt(payload)
        log.debug("%s: Converse on %s: prompt %d bytes", self.name, self.model_id, prompt.size())
        answer = self._converse(self.request(prompt), timeout)
        content = ((answer.get("output") or {}).get("message") or {}).get("content") or []
        text = "\n".join(block["text"] for block in content if isinstance(block.get("text"), str))
        return self.reply(self.model_id, text, answer.get("stopReason"), usage_tokens(answer.get("usage") or {}))

    def _converse(self, request: dict, timeout: float) -> dict:
        """Converse, retrying throttling until the next wait would pass the phase's deadline."""
        from botocore.exceptions import ClientError, ReadTimeoutError

        deadline = self.clock() + timeout
        attempt = 0
        while True:
            read_timeout = max(1, math.ceil(deadline - self.clock()))
            try:
                return aws.call_client("bedrock-runtime", read_timeout).converse(**request)
            except ReadTimeoutError:
                raise AgentError(f"timeout: {self.name}: no answer from Bedrock model {self.model_id} "
                                 f"within {timeout:g}s") from None
            except ClientError as error:
                code = aws.error_code(error)
                if code not in RETRYABLE_CODES:
                    raise self._failure(error) from None
                attempt += 1
                delay = self.backoff(attempt)
                if self.clock() + delay >= deadline:
                    raise AgentError(f"timeout: {self.name}: Bedrock still answered {code} for model "
                                     f"{self.model_id} after {attempt} attempts within {timeout:g}s",
                                     "ask for a higher Bedrock quota for the model, or raise timeout_seconds "
                                     "of the agent") from None
                log.warning("%s: Bedrock answered %s; attempt %d again in %.1fs", self.name, code, attempt + 1,
                            delay)
                self.sleep(delay)
            except Exception as error:  # noqa: BLE001 - botocore errors become one line, others propagate
                failure = self._failure(error)
                if failure is None:
                    raise
                raise failure from None

    def _failure(self, error: Exception) -> AgentError | None:
        """A botocore error as one agent-error line naming the model; None for any other exception."""
        translated = aws.translate(error, f"{self.name}: Bedrock Converse with model {self.model_id}")
        if translated is error:
            return None
        hint = _HINTS.get(aws.error_code(error))
        return AgentError(f"agent-error: {mask_secrets(translated.message)}",
                          hint.format(model=self.model_id, region=aws.region()) if hint else translated.hint)

    def status(self) -> dict:
        priced = self.priced()
        return {"state": "available", "version": self.model_id, "capacity": "on demand", "errors_last_hour": None,
                "detail": "Bedrock Converse" if priced else "Bedrock Converse, no prices: cost counted as 0"}


def usage_tokens(usage: dict) -> dict:
    """{input, output, cached} from Converse usage: Bedrock counts cache reads and writes apart from
    inputTokens; input here is every prompt token, cached the ones read from the cache."""
    def count(key: str) -> int:
        value = usage.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    cached = count("cacheReadInputTokens")
    return {"input": count("inputTokens") + cached + count("cacheWriteInputTokens"),
            "output": count("outputTokens"), "cached": cached}
