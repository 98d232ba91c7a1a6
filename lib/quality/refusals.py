"""Refused attempts, read back from the history so that the next evolution learns what failed
(issue 15 item 7): the hunks of the refused change, the failing test ids and the failing gates.

A refusal is found in three places, each read once per (evolution, cycle, attempt):
- a failed task whose error is a refusal line (`bad-patch:`, `tests failed:`, `gates-failed:`, ...),
  its artifact holding the change it proposed;
- the `feedback` entries of a later attempt's input (DESIGN §5: error, patch, tests.failed, gates);
- a failed evolution whose error is a refusal (its last attempt), with the last implement task's change.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

#: The evolution's attempt log beside its log (DESIGN §5): written by the runner, read by analyze_failure and
#: update_patterns.
ATTEMPTS_FILE = "attempts.json"

#: The error classes of a refused attempt (DESIGN §5, Repair).
REFUSALS = ("bad-patch", "syntax-error", "tests failed", "tests-weakened", "gates-failed", "vetoed")
#: What one pattern keeps of a change: enough to name it, never the whole change.
MAX_HUNKS = 20
MAX_TESTS = 20

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_TEST_ID = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.py::[\w\[\]().,=:-]*[\w\])])")
_GATE = re.compile(r"(?:^|[;:]\s*)([a-z_]+) (\S+?)->(\S+?) \(must be")
_ATTEMPTS_PREFIX = re.compile(r"^(?:\d+ attempts refused; last: )?(?:\w+ failed \(task [\w-]+\): )?")


@dataclass
class Refusal:
    """One refused attempt: its error line and what it names."""

    error: str
    hunks: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)
    gates: list[dict] = field(default_factory=list)


def refusal_line(error: str | None) -> str | None:
    """The refusal an error line carries (without the `N attempts refused; last:` and task prefixes), or None."""
    line = _ATTEMPTS_PREFIX.sub("", (error or "").strip(), count=1)
    return line if line.startswith(REFUSALS) else None


def refusal_class(line: str) -> str:
    """The refusal's class (`tests failed`, `gates-failed`, ...) of a refusal line."""
    return next(name for name in REFUSALS if line.startswith(name))


def hunks(patch: str) -> list[dict]:
    """[{path, start, end}] of a unified diff: the lines of the base each hunk replaces (for a new
    file, the lines it adds)."""
    found, path, new_file = [], None, False
    for line in (patch or "").splitlines():
        if line.startswith("--- "):
            new_file = line[4:].strip() == "/dev/null"
        elif line.startswith("+++ "):
            name = line[4:].strip()
            path = name[2:] if name.startswith("b/") else None if name == "/dev/null" else name
        elif line.startswith("diff --git "):
            path = line.rsplit(" b/", 1)[-1].strip() if " b/" in line else None
        elif path and (match := _HUNK.match(line)):
            old, old_count, new, new_count = match.groups()
            start, count = (int(new), new_count) if new_file else (int(old), old_count)
            count = 1 if count is None else int(count)
            found.append({"path": path, "start": start, "end": start + max(count, 1) - 1})
    return found[:MAX_HUNKS]


def test_ids(*texts) -> list[str]:
    """The pytest node ids named in the texts (error lines, output tails), in order, once each."""
    found = []
    for text in texts:
        if isinstance(text, list):
            found += [str(item) for item in text]
        elif isinstance(text, str):
            found += _TEST_ID.findall(text)
    return list(dict.fromkeys(found))[:MAX_TESTS]


def gates(error: str, listed=None) -> list[dict]:
    """[{name, before, after}] of the failing gates: the feedback's own list, else the error line's
    `gates-failed: docstring 42.0->30.0 (must be ...)`."""
    if isinstance(listed, list) and listed:
        return [{"name": g.get("name"), "before": g.get("before"), "after": g.get("after")}
                for g in listed if isinstance(g, dict)]
    return [{"name": name, "before": _number(before), "after": _number(after)}
            for name, before, after in _GATE.findall(error or "")]


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return None


def change_of(artifact: dict) -> tuple[str, list[str]]:
    """(patch, paths) of the change an implement artifact proposed: its patch, else the paths of its
    edits, files or in-place changes."""
    output = artifact.get("output") if isinstance(artifact.get("output"), dict) else {}
    for patch in (artifact.get("patch"), output.get("patch")):
        if isinstance(patch, str) and patch.strip():
            return patch, []
    return "", _paths_of(output)


def _paths_of(output: dict) -> list[str]:
    paths = []
    for form in ("edits", "files"):
        for item in output.get(form) or []:
            if isinstance(item, dict) and isinstance(item.get("path"), str):
                paths.append(item["path"])
    for name in output.get("changed_files") or []:
        if isinstance(name, str):
            paths.append(name)
    return sorted(set(paths))


def refusal(error: str, patch: str = "", paths: list[str] = (), tests=None, listed_gates=None) -> Refusal:
    """What a refused attempt names, from its error line and change (and the feedback's lists)."""
    if patch and not patch.lstrip().startswith(("diff", "---", "@@")):
        try:  # a feedback entry of an `edits` or `files` reply holds that reply as JSON
            paths, patch = _paths_of(json.loads(patch)), ""
        except (ValueError, AttributeError):
            patch = ""
    found = hunks(patch)
    files = sorted({h["path"] for h in found} | set(paths))
    return Refusal(error=error, hunks=found, files=files, tests=test_ids(tests, error),
                   gates=gates(error, listed_gates))


def from_feedback(entry: dict) -> Refusal | None:
    """A refusal from one `feedback` entry of an attempt's input (DESIGN §5)."""
    error = refusal_line(entry.get("error")) if isinstance(entry, dict) else None
    if not error:
        return None
    tests = entry.get("tests") if isinstance(entry.get("tests"), dict) else {}
    failed = tests.get("failed") if isinstance(tests.get("failed"), list) else None
    patch = entry.get("patch") if isinstance(entry.get("patch"), str) else ""
    return refusal(error, patch, tests=failed, listed_gates=entry.get("gates"))


def from_task(task: dict, artifact: dict) -> Refusal | None:
    """A refusal from a failed task's error line and the change its artifact holds."""
    error = refusal_line(task.get("error"))
    if not error:
        return None
    patch, paths = change_of(artifact)
    tests = artifact.get("tests") if isinstance(artifact.get("tests"), dict) else {}
    return refusal(error, patch, paths, tests=tests.get("failed") if isinstance(tests.get("failed"), list) else None)


def attempt_of(task: dict, artifact: dict) -> int:
    """The attempt a task belongs to: its own field, else its input's, else the first."""
    given = task.get("attempt") or (artifact.get("input") or {}).get("attempt")
    return given if isinstance(given, int) and given > 0 else 1


def attempt_log(evolution_folder: Path) -> list[dict]:
    """Every implement attempt of the evolution whose folder this is, with its outcome, refusal and candidates
    ([] before any, or for an older evolution)."""
    try:
        found = json.loads((evolution_folder / ATTEMPTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [attempt for attempt in found if isinstance(attempt, dict)] if isinstance(found, list) else []
