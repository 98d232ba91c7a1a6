"""Learned patterns (DESIGN §4): prevention patterns from reverted PRs, failure and success
patterns mined from the evolution history, and the planner's question "is this file blocked?".

A pattern is {id, kind: prevention|success|failure, source, signature, created_at, hits};
its signature holds files, change_kind and a message. Ids are derived from what the
pattern is about, so running a command twice updates a pattern instead of adding one.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import re
from collections import Counter
from pathlib import Path

from lib import paths
from lib.errors import NotFound
from lib.log import mask_secrets
from lib.quality import refusals
from lib.store import Store, open_store
from lib.store.sqlite import SQLiteStore
from lib.timeparse import iso

log = logging.getLogger(__name__)

ANY = "any"
_CHANGE_KIND = re.compile(r"Change kind:\s*`([^`]+)`")
_REVERTS_PR = re.compile(r"\bReverts\s+(?:([\w.-]+/[\w.-]+))?#(\d+)")
_REVERTS_COMMIT = re.compile(r"\bThis reverts commit ([0-9a-f]{7,40})")
_ERROR_WORD = re.compile(r"^[A-Za-z][\w.-]*$")
FILE_KINDS = (
    ("tests", re.compile(r"(^|/)(tests?/|test_[^/]*\.py$|[^/]*_test\.py$)")),
    ("ci", re.compile(r"^\.github/")),
    ("docs", re.compile(r"\.(md|rst|txt)$")),
    ("config", re.compile(r"\.(ya?ml|json|toml|ini|cfg)$")),
    ("python", re.compile(r"\.py$")),
)


# ---- prevention patterns from pull requests ---------------------------------------------

def file_kind(name: str) -> str:
    return next((kind for kind, pattern in FILE_KINDS if pattern.search(name)), "other")


def change_kind_of(pull: dict) -> str:
    """The change kind an auto-evolution PR names in its body; any other PR blocks every kind."""
    match = _CHANGE_KIND.search(pull.get("body") or "")
    return match.group(1).strip() if match else ANY


def reverted_pull(client, pull: dict) -> dict | None:
    """The PR that this one reverts: `Reverts owner/repo#N` (gh, the web UI) or the commit of `git revert`."""
    body = pull.get("body") or ""
    match = _REVERTS_PR.search(body)
    if match and (not match.group(1) or match.group(1).lower() == str(client.repo).lower()):
        return client.get_pull(int(match.group(2)))
    match = _REVERTS_COMMIT.search(body)
    if match:
        owners = client.get(client.repo_path(f"/commits/{match.group(1)}/pulls"))
        if owners:
            return client.get_pull(int(owners[0]["number"]))
    return None


def from_pull(client, number: int) -> dict:
    """A prevention pattern for the change a PR made, or for the change it reverts."""
    pull = client.get_pull(number)
    original = reverted_pull(client, pull)
    subject = original or pull
    files = client.pull_files(subject["number"])
    names = sorted({entry["filename"] for entry in files})
    why = f"reverted by #{number}" if original else f"marked bad from #{number}"
    signature = {
        "files": names,
        "change_kind": change_kind_of(subject),
        "message": f"{subject.get('title', '')} ({why})",
        "pr": subject["number"],
        "reverted_by": number if original else None,
        "title": subject.get("title"),
        "labels": sorted(label["name"] for label in subject.get("labels", [])),
        "file_kinds": sorted({file_kind(name) for name in names}),
        "file_changes": dict(Counter(entry.get("status", "modified") for entry in files)),
    }
    return {"id": f"prevent-pr-{subject['number']}", "kind": "prevention", "source": str(number),
            "signature": signature, "created_at": iso(), "hits": 0}


def save(store: Store, pattern: dict) -> tuple[dict, bool]:
    """Insert or update by id, keeping the first created_at and the hits; returns (record, created)."""
    existing = {p["id"]: p for p in store.list_patterns(pattern["kind"])}.get(pattern["id"])
    if existing:
        pattern = {**pattern, "created_at": existing["created_at"],
                   "hits": max(existing.get("hits") or 0, pattern.get("hits") or 0)}
    store.put_pattern(pattern)
    return pattern, existing is None


# ---- the planner's question ----------------------------------------------------------------

def _same_file(candidate: str, listed: str) -> bool:
    """Paths may be relative to the repository or to the target: compare on whole path parts."""
    if any(char in listed for char in "*?["):
        return fnmatch.fnmatch(candidate, listed) or fnmatch.fnmatch(candidate, f"*/{listed}")
    a, b = candidate.strip("/"), listed.strip("/")
    return a == b or a.endswith(f"/{b}") or b.endswith(f"/{a}")


def _same_kind(requested: str, listed: str | None) -> bool:
    return not listed or ANY in (requested, listed) or requested == listed


def names_file(pattern: dict, name: str) -> bool:
    """Whether the pattern's signature lists the file."""
    return any(_same_file(name, listed) for listed in (pattern.get("signature") or {}).get("files", []))


def blocked(store: Store, files: list[str], change_kind: str) -> list[tuple[str, dict]]:
    """Each file that a prevention pattern forbids for this change kind, with the pattern.

    Every match counts as a hit of the pattern, so operators see which patterns work.
    """
    found: list[tuple[str, dict]] = []
    hits: Counter = Counter()
    for pattern in store.list_patterns("prevention"):
        signature = pattern.get("signature") or {}
        if not _same_kind(change_kind, signature.get("change_kind")):
            continue
        for name in files:
            if names_file(pattern, name):
                found.append((name, pattern))
                hits[pattern["id"]] += 1
    for pattern in {p["id"]: p for _, p in found}.values():
        pattern["hits"] = (pattern.get("hits") or 0) + hits[pattern["id"]]
        store.put_pattern(pattern)
        log.info("prevention pattern %s blocks %s for %s", pattern["id"],
                 ", ".join(n for n, p in found if p["id"] == pattern["id"]), change_kind)
    return found


def for_target(store: Store, target: str) -> list[dict]:
    """The prevention and failure patterns whose files lie in the target (repository-relative), or
    that name no file: what an agent working on the target should know (DESIGN §5). A bare file
    name (older plans named files relative to the target) counts as inside."""
    prefix = "" if target in ("", ".") else target.strip("/") + "/"
    found = []
    for pattern in store.list_patterns():
        if pattern["kind"] not in ("prevention", "failure"):
            continue
        files = (pattern.get("signature") or {}).get("files") or []
        if not files or any(name.startswith(prefix) or "/" not in name for name in files):
            found.append(pattern)
    return found


# ---- mining the history ------------------------------------------------------------------

def error_class(error: str | None, agent: str | None = None) -> str:
    """The leading words of an error ("agent-error: a: RuntimeError: ..." -> agent-error/RuntimeError)."""
    words = []
    for part in (error or "").split(": ")[:-1]:
        part = part.strip()
        if not _ERROR_WORD.match(part):
            break
        if part != agent:
            words.append(part)
    return "/".join(words) or (error or "unknown").split(":")[0].strip()[:40] or "unknown"


def _artifact(history: Path, task: dict) -> dict:
    path = history / str(task.get("evolution_id")) / "tasks" / f"{task['id']}.json"
    try:
        artifact = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return artifact if isinstance(artifact, dict) and isinstance(artifact.get("input") or {}, dict) else {}


def _files(artifact: dict) -> list[str]:
    """The files a task worked on: the plan it was given, or what it planned or changed."""
    output = artifact.get("output") if isinstance(artifact.get("output"), dict) else {}
    plan = ((artifact.get("input") or {}).get("context") or {}).get("plan") or {}
    for listed in (output.get("changed_files"), output.get("files"), plan.get("files")):
        if isinstance(listed, list) and listed:
            return sorted(str(name) for name in listed)
    return []


def _pattern_id(kind: str, signature: dict) -> str:
    digest = hashlib.sha256(json.dumps(signature, sort_keys=True).encode()).hexdigest()[:12]
    return f"{kind}-{digest}"


def mine(store: Store, history: Path) -> list[dict]:
    """Failure signatures (phase, error class, files; for a refused attempt also its hunks, failing test
    ids and failing gates) and successful change kinds, with counts."""
    found: dict[str, dict] = {}

    def count(kind: str, key: dict, source: str, message: str, shown: dict | None = None) -> None:
        pattern_id = _pattern_id(kind, key)
        entry = found.setdefault(pattern_id, {"id": pattern_id, "kind": kind, "source": source, "hits": 0})
        entry["signature"] = {**key, **(shown or {}), "message": message}  # the newest values
        entry["source"] = source
        entry["hits"] += 1

    def count_refusal(phase: str, refused: refusals.Refusal, source: str) -> None:
        key = {"phase": phase, "error_class": refusals.refusal_class(refused.error), "files": refused.files}
        named = {"hunks": refused.hunks, "tests": refused.tests, "gates": [g["name"] for g in refused.gates]}
        key.update({name: value for name, value in named.items() if value})
        count("failure", key, source, mask_secrets(refused.error)[:200],
              {"gates": refused.gates} if refused.gates else None)

    seen: set[tuple] = set()  # (evolution, cycle, attempt, candidate): each refused attempt counts once
    for task in reversed(store.list_tasks(statuses=("failed",))):  # oldest first: source is the newest
        artifact = _artifact(history, task)
        refused = refusals.from_task(task, artifact)
        if refused:
            seen.add((task.get("evolution_id"), task.get("cycle"), refusals.attempt_of(task, artifact),
                      (artifact.get("input") or {}).get("candidate")))
            count_refusal(task.get("phase"), refused, task.get("evolution_id"))
            continue
        key = {"phase": task.get("phase"), "error_class": error_class(task.get("error"), task.get("agent")),
               "files": _files(artifact)}
        count("failure", key, task.get("evolution_id"), mask_secrets(str(task.get("error") or ""))[:200])
    for evolution in reversed(store.list_evolutions()):
        for cycle, attempt, candidate, refused in _refused_attempts(store, history, evolution):
            if (evolution["id"], cycle, attempt, candidate) not in seen:
                seen.add((evolution["id"], cycle, attempt, candidate))
                count_refusal("implement", refused, evolution["id"])
    for evolution in reversed(store.list_evolutions(statuses=("succeeded",))):
        plan = next((t for t in store.list_tasks(evolution["id"]) if t.get("phase") == "plan"), None)
        output = (_artifact(history, plan).get("output") or {}) if plan else {}
        key = {"focus": evolution.get("focus"), "target": evolution.get("target"),
               "change_kind": output.get("change_kind") if isinstance(output, dict) else None}
        count("success", key, evolution["id"], f"{evolution.get('focus')} on {evolution.get('target')} succeeded")
    return list(found.values())


def _refused_attempts(store: Store, history: Path, evolution: dict):
    """(cycle, attempt, candidate, Refusal) of an evolution's refused attempts that no failed task records: the
    feedback later attempts were given, and the last attempt that the evolution's error names (with candidates,
    DESIGN §5: each refused candidate of it, from attempts.json). candidate is None without candidates."""
    implements = [t for t in store.list_tasks(evolution["id"]) if t.get("phase") == "implement"]
    artifacts = [_artifact(history, task) for task in implements]
    for task, artifact in zip(implements, artifacts, strict=True):
        for entry in (artifact.get("input") or {}).get("feedback") or []:
            refused = refusals.from_feedback(entry)
            if refused and isinstance(entry.get("attempt"), int):
                yield task.get("cycle"), entry["attempt"], entry.get("candidate"), refused
    if evolution.get("status") != "failed" or not implements:
        return
    line = refusals.refusal_line(evolution.get("error"))
    if line:
        patch, paths = refusals.change_of(artifacts[-1])
        yield implements[-1].get("cycle"), refusals.attempt_of(implements[-1], artifacts[-1]), None, \
            refusals.refusal(line, patch, paths)
        return
    yield from _refused_candidates(history, evolution)


def _refused_candidates(history: Path, evolution: dict):
    """The refused candidates of an evolution's last attempt (its attempts.json), each with its task's change."""
    attempts = refusals.attempt_log(history / evolution["id"])
    if not attempts:
        return
    last = attempts[-1]
    for candidate in last.get("candidates") or []:
        line = refusals.refusal_line(candidate.get("error")) if isinstance(candidate, dict) else None
        if line and candidate.get("task_id"):
            artifact = _artifact(history, {"evolution_id": evolution["id"], "id": candidate["task_id"]})
            yield last.get("cycle"), last.get("attempt"), candidate.get("candidate"), refusals.refusal(
                line, *refusals.change_of(artifact))


def merge(store: Store, mined: list[dict], dry_run: bool = False) -> dict:
    """Store mined patterns; hits never go down (the history may have been pruned since), and an
    updated pattern takes the newest signature."""
    stored = {p["id"]: p for p in store.list_patterns()}
    report: dict = {"new": [], "updated": [], "unchanged": 0}
    for pattern in mined:
        before = stored.get(pattern["id"])
        if before is None:
            record = {**pattern, "created_at": iso()}
            report["new"].append(record)
        elif pattern["hits"] > (before.get("hits") or 0):
            record = {**before, "hits": pattern["hits"], "source": pattern["source"],
                      "signature": pattern["signature"]}  # the newest values (a gate's before/after)
            report["updated"].append({**record, "hits_before": before.get("hits") or 0})
        else:
            report["unchanged"] += 1
            continue
        if not dry_run:
            store.put_pattern(record)
    return report


def describe(pattern: dict) -> str:
    """One line for tables."""
    signature = pattern.get("signature") or {}
    if pattern["kind"] == "failure":
        what = f"{signature.get('phase')}: {signature.get('error_class')}"
        tests, gates = signature.get("tests") or [], signature.get("gates") or []
        if tests:
            what += " (" + ", ".join(tests[:2]) + (f" +{len(tests) - 2}" if len(tests) > 2 else "") + ")"
        if gates:
            what += " (" + ", ".join(f"{g['name']} {g['before']}->{g['after']}" for g in gates[:3]) + ")"
    elif pattern["kind"] == "success":
        what = f"{signature.get('focus')} on {signature.get('target')} ({signature.get('change_kind') or '?'})"
    else:
        what = f"{signature.get('change_kind')}: {signature.get('message')}"
    files = signature.get("files") or []
    shown = ", ".join(files[:3]) + (f" +{len(files) - 3}" if len(files) > 3 else "")
    return f"{what}" + (f" [{shown}]" if shown else "")



def update_from(source: Path, dry_run: bool = False) -> tuple[dict, Path]:
    """Mine a history folder into the configured store; returns (report, folder mined)."""

    folder = source.expanduser().resolve()
    store = open_store(create=True)
    if folder == paths.history_dir().expanduser().resolve():
        return merge(store, mine(store, folder), dry_run), folder
    database = folder / "state.db"
    if not database.is_file():
        raise NotFound(f"no evolution history at {folder} (no state.db)",
                       f"give the history folder, e.g. --source {paths.history_dir()}/")

    mined_from = SQLiteStore.open(path=database)
    try:
        return merge(store, mine(mined_from, folder), dry_run), folder
    finally:
        mined_from.close()
