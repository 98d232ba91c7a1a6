"""The span tree of one trace (one evolution): who called what, how long each step took.

The runner records one root span per evolution, one per cycle and one per task
(DESIGN §4); this module links them by parent_id and renders them indented, with the
offset from the start of the trace and the duration of each span.
"""

from __future__ import annotations

import re
from datetime import datetime

from lib import humanize, timeparse
from lib.errors import NotFound, UsageError
from lib.store import Store

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")

TREE_COLUMNS = [("tree", "SPAN"), ("status", "STATUS"), ("offset", "START"), ("duration", "DURATION"),
                ("detail", "DETAIL")]


def resolve(store: Store, value: str) -> str:
    """A trace id; an evolution or task id is accepted too and mapped to its trace."""
    value = value.strip().lower()
    if TRACE_ID.match(value):
        return value
    if value.startswith("task-"):
        task = store.get_task(value)
        if not task:
            raise NotFound(f"unknown task {value!r}", "find task ids with python scripts/analyze_failure.py --id <id>")
        if not task.get("trace_id"):
            raise NotFound(f"task {value} has no trace id recorded")
        return task["trace_id"]
    if value.startswith("evo-"):
        for task in store.list_tasks(evolution_id=value):
            if task.get("trace_id"):
                return task["trace_id"]
        raise NotFound(f"no trace recorded for evolution {value!r}",
                       "an evolution has a trace once its first task started")
    raise UsageError(f"{value!r} is not a trace id", "a trace id is 32 hex digits (the trace_id of a task)")


def _duration(span: dict, now: datetime) -> float | None:
    start = timeparse.from_iso(span.get("start"))
    if not start:
        return None
    end = timeparse.from_iso(span.get("end")) or now
    return max(0.0, (end - start).total_seconds())


def build(spans: list[dict], now: datetime | None = None) -> list[dict]:
    """Spans as a forest: each node is the span plus duration_ms and its children, by start time.

    A span whose parent is not in the trace becomes a root (so nothing recorded is hidden).
    """
    now = now or timeparse.utcnow()
    nodes = {span["span_id"]: {**span, "duration_ms": None, "children": []} for span in spans}
    roots = []
    for node in nodes.values():
        seconds = _duration(node, now)
        node["duration_ms"] = None if seconds is None else int(round(seconds * 1000))
        parent = nodes.get(node.get("parent_id") or "")
        (parent["children"] if parent and parent is not node else roots).append(node)
    for node in nodes.values():
        node["children"].sort(key=lambda child: child.get("start") or "")
    return sorted(roots, key=lambda root: root.get("start") or "")


def trace(store: Store, value: str) -> dict:
    """{trace_id, evolution_id, started_at, duration_ms, spans: [tree]}; NotFound for an unknown trace."""
    trace_id = resolve(store, value)
    spans = store.list_spans(trace_id)
    if not spans:
        raise NotFound(f"unknown trace {trace_id!r}",
                       "spans are recorded as tasks end; check the id with python scripts/show_failure.py --id <task>")
    roots = build(spans)
    evolution_id = next((s["attributes"].get("evolution_id") for s in spans
                         if isinstance(s.get("attributes"), dict) and s["attributes"].get("evolution_id")), None)
    starts = [s["start"] for s in spans if s.get("start")]
    ends = [s["end"] for s in spans if s.get("end")]
    total = None
    if starts and ends:
        total = int(round((timeparse.from_iso(max(ends)) - timeparse.from_iso(min(starts))).total_seconds() * 1000))
    return {"trace_id": trace_id, "evolution_id": evolution_id, "started_at": min(starts) if starts else None,
            "duration_ms": total, "spans": roots}


def render(document: dict) -> str:
    """The tree as a table (tabulate would strip the indentation without preserve_whitespace)."""
    from tabulate import tabulate

    return tabulate([[row[key] for key, _ in TREE_COLUMNS] for row in rows(document)],
                    headers=[header for _, header in TREE_COLUMNS], tablefmt="simple", preserve_whitespace=True)


def rows(document: dict) -> list[dict]:
    """Table rows: the tree drawn with box characters, offset from the trace start, duration."""
    origin = timeparse.from_iso(document.get("started_at"))
    out: list[dict] = []

    def walk(node: dict, prefix: str, last: bool, depth: int) -> None:
        branch = "" if depth == 0 else ("└─ " if last else "├─ ")
        start = timeparse.from_iso(node.get("start"))
        attributes = node.get("attributes") if isinstance(node.get("attributes"), dict) else {}
        out.append({
            "tree": f"{prefix}{branch}{node.get('name') or node['span_id']}",
            "status": node.get("status") or ("running" if not node.get("end") else ""),
            "offset": f"+{humanize.duration((start - origin).total_seconds())}" if start and origin else "",
            "duration": humanize.duration(None if node["duration_ms"] is None else node["duration_ms"] / 1000)
            + ("" if node.get("end") else " (running)"),
            "detail": attributes.get("task_id") or "",
        })
        child_prefix = prefix + ("" if depth == 0 else ("   " if last else "│  "))
        for index, child in enumerate(node["children"]):
            walk(child, child_prefix, index == len(node["children"]) - 1, depth + 1)

    for root in document["spans"]:
        walk(root, "", True, 0)
    return out
