"""What an agent is shown of the target (DESIGN §5, agent input `files` and `map`).

`files` holds contents, most relevant first: for implement and evaluate the files the phase is
about (the plan's, the change's), then the target files they import; for research and plan the
target files with the most to gain for the focus, by the runner's own measurement. At most
`evolution.agent_context_bytes` bytes of content in all. `map` outlines every other target file
(its top-level classes and functions with signatures and first docstring line), as coding agents'
repository maps do, so that an agent knows the whole target within the budget. A symlink is never
followed: it is listed as `{path, content: null, symlink: true}` and nothing behind it is read.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import stat
from pathlib import Path, PurePosixPath

from lib.evolution.contract import inside
from lib.quality import measure

#: Phases shown what they work on (and its imports); the others are shown the target ranked by the focus.
WORKING_PHASES = ("implement", "evaluate")
#: The share of the budget kept for the map while contents are chosen (the map may use more if left over).
MAP_SHARE = 4
#: Map detail levels, richest first; the map sheds detail from its least relevant entries until it fits.
FULL, NO_DOCS, NAMES, PATH_ONLY = range(4)
#: The longest first docstring line a map symbol keeps.
DOC_CHARS = 120

#: The measurement research ranked by, with the files' (size, mtime): plan reads it again.
_ranking_cache: dict = {}
#: Outlines by absolute path, with the file's (size, mtime): the four phases of a cycle parse a file once.
_outline_cache: dict[str, tuple[tuple, dict]] = {}
OUTLINE_CACHE_FILES = 10000


def build(worktree: Path, target: str, phase: str, focus: str, given: list[str], budget: int) -> dict:
    """{files, map} for one phase; `given`: the plan's files (implement) or the changed files (evaluate).

    Every target file ends up in exactly one of the two lists.
    """
    worktree = Path(worktree)
    target_files = _target_files(worktree, target)
    safe_given = [name for name in dict.fromkeys(given) if inside(name, target)]
    if phase in WORKING_PHASES:
        ordered = list(dict.fromkeys(safe_given + _imported(worktree, safe_given, target_files)))
    else:
        ordered = _ranked(worktree, target, focus, list(dict.fromkeys(safe_given + target_files)))
    sources = {name: _read(worktree, name) for name in dict.fromkeys(ordered + target_files)}
    outlines = {name: _outline_of(worktree, name, data) for name, data in sources.items() if isinstance(data, bytes)}
    links = [name for name in target_files if sources[name] == "symlink" and name not in ordered]
    files, shown = _contents(ordered + links, sources, outlines, budget)  # every symlink is listed, unread
    rest = [name for name in dict.fromkeys(ordered + target_files)
            if name not in shown and isinstance(sources[name], bytes)]
    used = sum(len(sources[name]) for name in shown)
    return {"files": files, "map": copy.deepcopy(_fit(rest, outlines, budget - used))}  # the cache keeps its own


# ---- which files -------------------------------------------------------------------------------

def _target_files(worktree: Path, target: str) -> list[str]:
    """The target's Python files (repository-relative), sorted, without entering symlinked folders."""
    root = worktree / target
    if root.is_symlink() or not root.exists():
        return []
    if root.is_file():
        return [target] if root.suffix == ".py" else []
    found = []
    for folder, subfolders, names in os.walk(root, followlinks=False):
        subfolders[:] = sorted(d for d in subfolders if d not in measure.SKIP_DIRS)
        for name in names:
            if name.endswith(".py"):
                found.append((Path(folder) / name).relative_to(worktree).as_posix())
    return sorted(found)


def _ranked(worktree: Path, target: str, focus: str, target_files: list[str]) -> list[str]:
    """The target's files, most to gain for the focus first (the planner's score), then by path."""
    score = measure.FOCUS_SCORES.get(focus, measure.FOCUS_SCORES["quality"])
    per_file = _per_file(worktree, target, target_files)
    return sorted(target_files, key=lambda name: (-round(score(per_file[name]), 2) if name in per_file else 0, name))


def _per_file(worktree: Path, target: str, target_files: list[str]) -> dict:
    """The runner's measurement per repository path; cached while the files are unchanged, since
    research and plan of one cycle see the same tree."""
    stamp = tuple((name, _stat(worktree / name)) for name in target_files)
    key = (str(worktree), target)
    cached = _ranking_cache.get(key)
    if cached and cached[0] == stamp:
        return cached[1]
    root = worktree / target
    base = root if root.is_dir() else root.parent
    try:
        measured = measure.measure(root)["per_file"]
    except (OSError, ValueError):
        measured = {}
    per_file = {(base / name).relative_to(worktree).as_posix(): figures for name, figures in measured.items()}
    _ranking_cache.clear()
    _ranking_cache[key] = (stamp, per_file)
    return per_file


def _stat(path: Path) -> tuple:
    try:
        info = path.lstat()
    except (OSError, ValueError):
        return ()
    return info.st_size, info.st_mtime_ns


def _imported(worktree: Path, names: list[str], target_files: list[str]) -> list[str]:
    """The target files that the given files import, in the order of their import statements."""
    modules: dict[str, str] = {}
    for name in target_files:
        for dotted in _module_names(name):
            modules.setdefault(dotted, name)
    found = []
    for name in names:
        data = _read(worktree, name)
        if not isinstance(data, bytes) or not name.endswith(".py"):
            continue
        try:
            tree = ast.parse(data)
        except (SyntaxError, ValueError):
            continue
        package = PurePosixPath(name).parent.parts
        for node in ast.walk(tree):
            for dotted in _imports_of(node, package):
                if dotted in modules and modules[dotted] not in names:
                    found.append(modules[dotted])
    return list(dict.fromkeys(found))


def _module_names(name: str) -> list[str]:
    """Every dotted name a file can be imported by: each tail of its path (`pkg.mod`, `mod`)."""
    parts = list(PurePosixPath(name).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return [".".join(parts[start:]) for start in range(len(parts))]


def _imports_of(node: ast.AST, package: tuple) -> list[str]:
    """The dotted modules an import statement may load (a `from` import's names may be submodules)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = list(package[:len(package) - (node.level - 1)])
        base += node.module.split(".") if node.module else []
        module = ".".join(base)
    else:
        module = node.module or ""
    return [module] + [f"{module}.{alias.name}" if module else alias.name for alias in node.names]


# ---- reading, never through a symlink -------------------------------------------------------------

def _read(worktree: Path, name: str) -> bytes | str | None:
    """The file's bytes; "symlink" when the path or a folder on it is a symbolic link; None when unreadable."""
    path = worktree
    for part in PurePosixPath(name).parts:
        path = path / part
        try:
            if stat.S_ISLNK(path.lstat().st_mode):
                return "symlink"
        except (OSError, ValueError):  # ValueError: a NUL byte in an agent's path
            return None
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(descriptor)


def _contents(ordered: list[str], sources: dict, outlines: dict, budget: int) -> tuple[list[dict], set[str]]:
    """The file entries with content, greedily in order, keeping room for the map of what is left."""
    entries, shown, used = [], set(), 0
    map_left = sum(_size(outline) for outline in outlines.values())
    for name in ordered:
        data = sources.get(name)
        if data == "symlink":
            entries.append({"path": name, "content": None, "symlink": True})
            continue
        if not isinstance(data, bytes):
            continue
        after = map_left - _size(outlines[name])
        if used + len(data) + min(after, budget // MAP_SHARE) > budget:
            continue
        entries.append({"path": name, "content": data.decode("utf-8", "replace")})
        shown.add(name)
        used, map_left = used + len(data), after
    return entries, shown


# ---- the map ------------------------------------------------------------------------------------

def _outline_of(worktree: Path, name: str, data: bytes) -> dict:
    """The file's outline, parsed again only when its size or modification time changed."""
    key, stamp = str(worktree / name), _stat(worktree / name)
    cached = _outline_cache.get(key)
    if cached and cached[0] == stamp and stamp:
        return cached[1]
    if len(_outline_cache) >= OUTLINE_CACHE_FILES:
        _outline_cache.clear()
    outline = _outline(name, data)
    _outline_cache[key] = (stamp, outline)
    return outline


def _outline(name: str, data: bytes) -> dict:
    """{path, lines, symbols} of one file at full detail; a Python file that does not parse has an error."""
    entry: dict = {"path": name, "lines": data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1),
                   "symbols": []}
    if not name.endswith(".py"):
        return entry
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError) as bad:
        entry["error"] = f"does not parse: {getattr(bad, 'msg', bad)} (line {getattr(bad, 'lineno', '?')})"
        return entry
    entry["symbols"] = [_symbol(node) for node in tree.body
                        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)]
    return entry


def _symbol(node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> dict:
    if isinstance(node, ast.ClassDef):
        bases = ", ".join(ast.unparse(base) for base in node.bases + node.keywords)
        signature = f"class {node.name}" + (f"({bases})" if bases else "")
    else:
        prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
        returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
        signature = f"{prefix} {node.name}({ast.unparse(node.args)}){returns}"
    doc = (ast.get_docstring(node) or "").strip().splitlines()
    return {"line": node.lineno, "signature": signature, **({"doc": doc[0][:DOC_CHARS]} if doc else {})}


def _at_level(outline: dict, level: int) -> dict:
    if level == FULL:
        return outline
    if level == PATH_ONLY:
        return {**outline, "symbols": [], "cut": True} if outline["symbols"] else outline
    if level == NO_DOCS:
        return {**outline, "symbols": [{"line": s["line"], "signature": s["signature"]} for s in outline["symbols"]]}
    return {**outline, "symbols": [{"signature": s["signature"].split("(", 1)[0]} for s in outline["symbols"]]}


def _size(entry: dict) -> int:
    return len(json.dumps(entry, ensure_ascii=False).encode()) + 2


def _fit(names: list[str], outlines: dict, room: int) -> list[dict]:
    """The map of names (most relevant first) in at most `room` bytes of JSON: the least relevant
    entries shed detail first (docstrings, then signatures, then symbols); every path stays listed."""
    levels = [FULL] * len(names)
    entries = [outlines[name] for name in names]
    total = sum(_size(entry) for entry in entries)
    for level in (NO_DOCS, NAMES, PATH_ONLY):
        for index in reversed(range(len(names))):
            if total <= room:
                return entries
            if levels[index] < level:
                smaller = _at_level(outlines[names[index]], level)
                total += _size(smaller) - _size(entries[index])
                entries[index], levels[index] = smaller, level
    return entries
