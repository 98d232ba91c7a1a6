"""What the model runtimes (bedrock, openai) share: prices, the cost of a call, the worst case that a
budget reserves before it (DESIGN §5 Budget), backoff, and the prompt of the agent's phase."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from lib.agents import AgentError, Runtime, prompting

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 8192
DEFAULT_TEMPERATURE = 0.0
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 30.0


class ModelRuntime(Runtime):
    """A runtime that prompts a model; sleep, clock and jitter are injectable so tests never wait."""

    def __init__(self, agent: dict, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, jitter: Callable[[], float] = random.random):
        super().__init__(agent)
        self.phase = agent["phase"]
        self.max_tokens = int(agent.get("max_tokens", DEFAULT_MAX_TOKENS))
        self.temperature = float(agent.get("temperature", DEFAULT_TEMPERATURE))
        self.price_in = float(agent.get("price_per_1k_input_usd") or 0)
        self.price_out = float(agent.get("price_per_1k_output_usd") or 0)
        cache_read = agent.get("price_per_1k_cache_read_usd")
        #: without a cache price, cached tokens cost what other input tokens cost (never under-counted)
        self.price_cache_read = self.price_in if cache_read is None else float(cache_read)
        self.instructions = prompting.read_instructions(agent)
        self.sleep, self.clock, self.jitter = sleep, clock, jitter

    def prompt(self, payload: dict) -> prompting.Prompt:
        return prompting.build(self.instructions, payload)

    def cost(self, tokens: dict) -> float:
        """tokens: {input (all prompt tokens, cached ones included), output, cached}."""
        cached = tokens.get("cached", 0)
        return ((tokens["input"] - cached) / 1000 * self.price_in + cached / 1000 * self.price_cache_read
                + tokens["output"] / 1000 * self.price_out)

    def reply(self, model: str, text: str, stop_reason: str | None, tokens: dict) -> dict:
        """The contract's output document from the model's answer; a refused answer still carries its cost."""
        cost = self.cost(tokens)
        log.info("%s: %s answered %d chars (%d input of which %d cached, %d output tokens, stop %s, $%.4f)",
                 self.name, model, len(text), tokens["input"], tokens["cached"], tokens["output"], stop_reason, cost)
        try:
            output = prompting.parse_reply(self.phase, text, self.name, stop_reason)
        except AgentError as failure:
            failure.cost_usd, failure.tokens = cost, tokens
            raise
        return {"status": "ok", "output": output, "cost_usd": cost, "tokens": tokens, "error": None}

    def worst_case_usd(self, payload: dict) -> float:
        """The call's most likely highest cost: the prompt's estimated tokens, none from cache, plus a
        full max_tokens answer."""
        return (self.prompt(payload).estimated_tokens() / 1000 * self.price_in
                + self.max_tokens / 1000 * self.price_out)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with equal jitter: attempt n waits between half and all of base x 2^(n-1)."""
        ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
        return ceiling / 2 + self.jitter() * ceiling / 2

    def priced(self) -> bool:
        return bool(self.price_in or self.price_out)
