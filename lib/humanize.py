"""Sizes and durations as people read them in tables and one-line messages: one format for each,
so that the same quantity reads the same in every command."""

from __future__ import annotations


def size(count: float | None) -> str:
    """512 B, 4.0 KB, 12.3 MB, 1.5 GB (multiples of 1024); empty when the size is unknown."""
    if count is None:
        return ""
    for unit in ("B", "KB", "MB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


def duration(seconds: float | None) -> str:
    """12.3s, 4m05s, 1h02m, 2d03h: how long one thing took or has been going, short enough for a column;
    empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.3g}s" if seconds < 10 else f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def decimal_duration(seconds: float | None) -> str:
    """50.0s, 6.7m, 1.2h: one unit and one decimal, for statistics read side by side (p50, p95, time
    per phase); a dash when there is no figure, as in the other report columns."""
    if seconds is None:
        return "—"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 60:
        return f"{seconds / 60:.1f}m"
    return f"{seconds:.1f}s"


def hours(seconds: float) -> str:
    """1.5 h: an age measured against a limit in hours (a backup's, the RPO)."""
    return f"{seconds / 3600:.1f} h"
