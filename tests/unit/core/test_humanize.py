"""lib.humanize: the one format for sizes and durations."""

from __future__ import annotations

from lib import humanize


def test_size_steps_by_1024_and_is_empty_when_unknown():
    assert [humanize.size(n) for n in (0, 512, 4096, 5 * (1 << 20) + (1 << 19), 3 << 40)] == [
        "0 B", "512 B", "4.0 KB", "5.5 MB", "3072.0 GB"]
    assert humanize.size(None) == ""


def test_decimal_duration_and_hours():
    assert [humanize.decimal_duration(s) for s in (50, 402, 4320, None)] == ["50.0s", "6.7m", "1.2h", "—"]
    assert humanize.hours(5400) == "1.5 h"
