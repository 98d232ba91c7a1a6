"""What every agent reply must be before its keys are read (DESIGN §5): UTF-8 text, JSON nested no deeper than
MAX_DEPTH. The runtimes check it as they read; lib/evolution/contract.py checks the rest of the reply."""

from __future__ import annotations

from lib.agents import AgentError

#: JSON nested deeper than this is bad-output (DESIGN §5): whatever walks an output never meets a RecursionError.
MAX_DEPTH = 100


class BadOutput(AgentError):
    """An agent's reply breaks the contract; the message is the task's error line."""

    def __init__(self, agent: str, what: str):
        super().__init__(f"bad-output: {agent}: {what}")


def utf8(who: str, data: bytes) -> str:
    """An agent's stdout as text; not valid UTF-8 is bad-output (DESIGN §5), never a UnicodeDecodeError."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as bad:
        raise BadOutput(who, f"the reply is not valid UTF-8 (byte {bad.start}: {data[bad.start:bad.start + 4]!r})") \
            from None


def check_nesting(who: str, document) -> None:
    """Refuse a document nested deeper than MAX_DEPTH levels; walked without recursion."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise BadOutput(who, f"the reply is nested deeper than {MAX_DEPTH} levels")
            pending.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
