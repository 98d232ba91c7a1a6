"""A progress meter that records what it was shown: (label, total, bytes advanced) per bar."""

from __future__ import annotations

import contextlib


class RecordingMeter:
    def __init__(self):
        self.bars: list[tuple[str, int, int]] = []

    @contextlib.contextmanager
    def __call__(self, total: int, label: str):
        seen = [0]

        def advance(count: int) -> None:
            seen[0] += count

        yield advance
        self.bars.append((label, total, seen[0]))
