"""Quality metrics of a code tree, shared by the research/evaluate agents, check_metrics.py and CI.

Real static analysis: docstring coverage from the AST, cyclomatic complexity and the
maintainability index from radon, lint and security findings from ruff (its bandit
rules, S), size in source lines, and test coverage from a coverage report when one exists.
Each file is measured once per content and lint setup: the figures are kept in the history
folder (measure_cache/) and shared by the pre-check, the runner, the agents and the judge.
"""

from __future__ import annotations

import ast
import concurrent.futures
import contextlib
import functools
import hashlib
import io
import json
import multiprocessing
import os
import re
import subprocess
import tempfile
import threading
import time
import tokenize
import tomllib
from dataclasses import dataclass
from pathlib import Path

from lib import paths
from lib.errors import ToolError

SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules", ".tox", ".mypy_cache", ".ruff_cache", "build",
             "dist", "evolution_history"}
LINT_RULES = "E,F,W,B,UP"
SECURITY_RULES = "S"
# Bandit rules that flag ordinary subprocess use, asserts and non-crypto randomness: noise here.
SECURITY_IGNORED = "S101,S311,S404,S603,S607"
RUFF_CONFIG_FILES = ("ruff.toml", ".ruff.toml")
#: names the way figures are computed: a change to it retires every cached measurement
MEASURE_VERSION = "2"
#: an entry unused this long is pruned by cleanup.py --temp (it is only measured again when met again)
CACHE_UNUSED_DAYS = 30
CACHE_RENEW_SECONDS = 86400
#: below this many files per worker process, starting the processes costs more than it saves
PARALLEL_FILES_PER_WORKER = 20


def python_files(target: Path) -> list[Path]:
    target = Path(target)
    if target.is_file():
        return [target]
    return sorted(p for p in target.rglob("*.py") if not SKIP_DIRS & set(p.relative_to(target).parts[:-1]))


_DEFINITIONS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _statements(tree: ast.Module) -> list[ast.AST]:
    """The module and every statement in it, breadth first as ast.walk meets them. A class or function is a
    statement, and statements sit only in statement lists, so the expressions (most of a tree) are skipped."""
    found: list[ast.AST] = [tree]
    for node in found:  # grows as it goes: each statement's own statement lists are read in turn
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            found.extend(child for child in getattr(node, field, ())
                         if isinstance(child, ast.AST) and not isinstance(child, ast.expr))
    return found


def _docstring_counts(tree: ast.Module) -> tuple[int, int, list[str]]:
    """(documented, total, names missing one) over the module and its public classes and functions."""
    documented, total, missing = 0, 0, []
    for node in _statements(tree):
        if isinstance(node, _DEFINITIONS) and node.name.startswith("_"):
            continue
        if isinstance(node, (ast.Module, *_DEFINITIONS)):
            total += 1
            if ast.get_docstring(node):
                documented += 1
            else:
                missing.append(getattr(node, "name", "<module>"))
    return documented, total, missing


#: ruff's finder reads sysconfig, whose first use is not thread-safe (CPython 3.11 can hand a second thread a
#: half-filled dict): the judge measures evolution candidates in threads (DESIGN §5 Candidates).
_RUFF_BIN_LOCK = threading.Lock()


@functools.cache
def ruff_bin() -> str:
    """ruff's executable, found once per process, under a lock."""
    with _RUFF_BIN_LOCK:
        from ruff.__main__ import find_ruff_bin

        return find_ruff_bin()


def ruff_findings(target: Path, rules: str) -> list[dict]:
    """ruff's findings for the rules, as its JSON (filename, code, message, location)."""
    result = subprocess.run(
        [ruff_bin(), "check", "--no-cache", "--select", rules, "--ignore", SECURITY_IGNORED,
         "--output-format", "json", "--exit-zero", str(target)],
        capture_output=True, text=True, timeout=300,
    )
    try:
        return json.loads(result.stdout or "[]")
    except ValueError:
        return []


def coverage_percent(target: Path) -> float | None:
    """Line coverage from coverage.json or coverage.xml in the target or its parents (the repo root)."""
    folder = Path(target).resolve()
    for candidate in (folder, *folder.parents):
        report = candidate / "coverage.json"
        if report.is_file():
            try:
                return round(float(json.loads(report.read_text())["totals"]["percent_covered"]), 2)
            except (ValueError, KeyError, TypeError):
                return None
        report = candidate / "coverage.xml"
        if report.is_file():
            import xml.etree.ElementTree as ElementTree  # noqa: S405 - our own coverage report

            try:
                return round(float(ElementTree.parse(report).getroot().get("line-rate")) * 100, 2)  # noqa: S314
            except (ElementTree.ParseError, TypeError, ValueError):
                return None
        if (candidate / ".git").exists():
            break
    return None


def raw_counts(source: str) -> tuple[int, int, int, int]:
    """(sloc, lloc, comments, multi) as radon.raw.analyze counts them, from one tokenize pass.

    radon re-tokenizes the code line by line, growing a buffer until it tokenizes: minutes on a 100 KB
    module. Its groups are the full tokenization's logical lines (ended by NEWLINE, or by NL outside
    brackets), so one pass over the tokens gives the same figures.
    """
    lines = io.StringIO(source).readlines()  # the rows tokenize numbers
    sloc = lloc = comments = multi = 0
    group: list[tokenize.TokenInfo] = []
    first_row, depth = 1, 0
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        kind = token.type
        if kind in (tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            continue
        if not group:
            first_row = token.start[0]
        group.append(token)
        if kind == tokenize.OP and token.string in "([{":
            depth += 1
        elif kind == tokenize.OP and token.string in ")]}":
            depth -= 1
        if kind == tokenize.NEWLINE or (kind == tokenize.NL and depth <= 0):
            last_row = token.end[0] if kind == tokenize.NEWLINE else token.start[0]
            kinds = _group_counts(group, lines[first_row - 1:last_row])
            sloc, lloc, comments, multi = sloc + kinds[0], lloc + kinds[1], comments + kinds[2], multi + kinds[3]
            group, depth = [], 0
    return sloc, lloc, comments, multi


def _group_counts(tokens: list, lines: list[str]) -> tuple[int, int, int, int]:
    """One radon group's (sloc, lloc, comments, multi): a lone comment or a lone one-line string counts in
    none; a lone multi-line string is multi; anything else is source, blank lines aside."""
    significant = [t for t in tokens if t.type not in (tokenize.NL, tokenize.NEWLINE)]
    comments = sum(1 for t in significant if t.type == tokenize.COMMENT)
    filled = sum(1 for line in lines if line.strip())
    if len(significant) == 1 and significant[0].type == tokenize.COMMENT and tokens[0] is significant[0]:
        return 0, 0, comments, 0
    if len(significant) == 1 and significant[0].type == tokenize.STRING and tokens[0] is significant[0]:
        one_line = significant[0].start[0] == significant[0].end[0]
        return 0, _logical(significant), comments, 0 if one_line else filled
    return filled, _logical(significant), comments, 0


def _logical(tokens: list) -> int:
    """radon's logical lines of one group (comments and newlines left out): per `;`-separated part, 2 when
    a colon sits before its end (`if x: y`), else 1, and 0 for an empty part."""
    parts: list[list] = [[]]
    for token in tokens:
        if token.type == tokenize.OP and token.string == ";":
            parts.append([])
        elif token.type != tokenize.COMMENT:
            parts[-1].append(token)
    parts[-1].append(None)  # radon's ENDMARKER closes the last part only
    total = 0
    for part in parts:
        colons = [i for i, t in enumerate(part) if t is not None and t.type == tokenize.OP and t.string == ":"]
        if colons:
            total += 2 - (colons[-1] == len(part) - 2)
        elif any(t is not None for t in part):
            total += 1
    return total


def measure_source(source: str) -> dict:
    """One file's figures from a single parse and a single tokenize pass; code that does not parse has a
    syntax_error. The maintainability index is radon's mi_compute over radon's Halstead volume and
    complexity, with the raw counts above."""
    from radon.metrics import h_visit_ast, mi_compute
    from radon.visitors import ComplexityVisitor

    try:
        tree = ast.parse(source)
        sloc, lloc, comment_lines, multi = raw_counts(source)
    except (SyntaxError, ValueError, tokenize.TokenError) as bad:
        return {"sloc": 0, "documented": 0, "definitions": 0, "doc_missing": [], "blocks": 0, "cc_total": 0,
                "max_complexity": 0, "maintainability": 0.0, "syntax_error": str(bad)}
    documented, total, missing = _docstring_counts(tree)
    complexity = ComplexityVisitor.from_ast(tree)  # one visit gives the blocks and the total
    blocks = complexity.blocks
    comments = (comment_lines + multi) / sloc * 100 if sloc else 0
    maintainability = mi_compute(h_visit_ast(tree).total.volume, complexity.total_complexity, lloc, comments)
    return {
        "sloc": sloc,
        "documented": documented,
        "definitions": total,
        "doc_missing": missing,
        "blocks": len(blocks),
        "cc_total": sum(b.complexity for b in blocks),
        "max_complexity": max((b.complexity for b in blocks), default=0),
        "maintainability": round(maintainability, 2),
    }


def decoded(content: bytes) -> str:
    """A file's text as read_text gives it (universal newlines), whatever bytes it holds."""
    return content.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


@dataclass(frozen=True)
class LintSetup:
    """How ruff counts a target's findings (DESIGN §5, lint is the target's own): under the ruff
    configuration of the target's repository when it has one (plus the security rules, counted apart),
    else under the toolkit's rules. key names the setup in the measurement cache; a file's place in it
    is its path from root (the repository's, the same in a checkout and in a worktree), since ruff's
    configuration can treat two files of the same content differently by where they are."""

    own_config: Path | None
    arguments: tuple[str, ...]
    key: str
    root: Path


def _repository_folders(target: Path) -> list[Path]:
    """The target's folder and its parents up to its repository's root (the one holding .git)."""
    start = Path(target).resolve()
    start = start if start.is_dir() else start.parent
    folders = []
    for folder in (start, *start.parents):
        folders.append(folder)
        if (folder / ".git").exists():
            break
    return folders


def own_ruff_config(target: Path) -> Path | None:
    """ruff.toml, .ruff.toml or a pyproject.toml with [tool.ruff], from the target up to its repository's root."""
    for folder in _repository_folders(target):
        for name in RUFF_CONFIG_FILES:
            if (folder / name).is_file():
                return folder / name
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            try:
                if "ruff" in tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}):
                    return pyproject
            except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
                pass
    return None


def lint_setup(target: Path) -> LintSetup:
    config = own_ruff_config(target)
    if config:
        arguments = ("--force-exclude", "--extend-select", SECURITY_RULES, "--extend-ignore", SECURITY_IGNORED)
        configured = config.name.encode() + b"\0" + config.read_bytes()
    else:
        arguments = ("--select", f"{LINT_RULES},{SECURITY_RULES}", "--ignore", SECURITY_IGNORED)
        configured = b""
    key = hashlib.sha256("\0".join((MEASURE_VERSION, _ruff_version(), *arguments)).encode() + b"\0" + configured)
    folders = _repository_folders(target)
    root = folders[-1] if (folders[-1] / ".git").exists() else folders[0]
    return LintSetup(config, arguments, key.hexdigest(), root)


@functools.cache
def _ruff_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ruff")
    except PackageNotFoundError:
        return "unknown"


def start_lint(files: list[str], setup: LintSetup) -> subprocess.Popen | None:
    """ruff started on these files under the target's lint setup; lint_findings() waits for its findings."""
    if not files:
        return None
    return subprocess.Popen([ruff_bin(), "check", "--no-cache", *setup.arguments, "--output-format", "json",
                             "--exit-zero", *files], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def lint_findings(process: subprocess.Popen | None) -> list[dict]:
    """The findings (ruff's JSON) of a start_lint() run; a run that overstays is killed and raises."""
    if process is None:
        return []
    try:
        output, _ = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    try:
        return json.loads(output or "[]")
    except ValueError:
        return []


def lint_findings_of(files: list[str], setup: LintSetup) -> list[dict]:
    return lint_findings(start_lint(files, setup))


def cache_folder() -> Path:
    """Where measurements are kept per content: derived data, never backed up, pruned by cleanup.py --temp."""
    return paths.history_dir() / paths.MEASURE_CACHE


def _cache_folder() -> Path | None:
    """The cache folder, or None when the history folder is not usable (measuring still works, uncached)."""
    try:
        return cache_folder()
    except ToolError:
        return None


def _cached(folder: Path | None, key: str) -> dict | None:
    """The entry for key; a hit renews the entry's mtime at most once a day, so that mtime says when it was
    last used and pruning keeps what evolutions still read."""
    if folder is None:
        return None
    try:
        with open(folder / key[:2] / f"{key}.json", "rb") as handle:
            entry = json.loads(handle.read())
            if time.time() - os.fstat(handle.fileno()).st_mtime > CACHE_RENEW_SECONDS:
                with contextlib.suppress(OSError):
                    os.utime(handle.fileno())
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) and isinstance(entry.get("figures"), dict) else None


def unused_cache_entries(unused_for: float) -> list[Path]:
    """Cache entries not used for unused_for seconds (their mtime, renewed on use)."""
    cutoff = time.time() - unused_for
    found = []
    for entry in cache_folder().glob("*/*.json"):
        with contextlib.suppress(OSError):  # gone meanwhile: nothing to prune
            if entry.stat().st_mtime < cutoff:
                found.append(entry)
    return found


def _keep(folder: Path | None, key: str, entry: dict) -> None:
    """Store one measurement; a cache that cannot be written only costs time. No fsync: a torn entry
    after a crash is a miss, never a wrong figure (it does not parse)."""
    if folder is None:
        return
    shelf, tmp = folder / key[:2], None
    try:
        shelf.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=shelf)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(entry, handle)
        os.replace(tmp, shelf / f"{key}.json")
    except OSError:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _measure_sources(sources: list[str]) -> list[dict]:
    """measure_source over every source. With enough files the parsing runs in forked worker processes;
    radon is imported first so that the children import nothing."""
    workers = min(os.cpu_count() or 1, len(sources) // PARALLEL_FILES_PER_WORKER)
    if workers < 2:
        return [measure_source(source) for source in sources]
    import radon.metrics  # noqa: F401 - loaded once here, inherited by the workers
    import radon.visitors  # noqa: F401

    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(measure_source, sources, chunksize=max(1, len(sources) // (workers * 4))))


def _place(path: Path, root: Path) -> bytes:
    resolved = path.resolve()
    return (resolved.relative_to(root) if resolved.is_relative_to(root) else resolved).as_posix().encode()


def measured_files(files: list[Path], setup: LintSetup, cache: bool = True) -> list[dict]:
    """Each file's measurement, {figures, findings}: from the cache when its content (and the lint setup)
    was measured before, anywhere; the others are measured now, in one parse and one ruff run, and kept."""
    folder = _cache_folder() if cache else None
    contents = [path.read_bytes() for path in files]
    keys = [hashlib.sha256(b"\0".join((content, setup.key.encode(), _place(path, setup.root)))).hexdigest()
            for path, content in zip(files, contents, strict=True)]
    entries = [_cached(folder, key) for key in keys]
    missing = [index for index, entry in enumerate(entries) if entry is None]
    if not missing:
        return entries
    lint = start_lint([str(files[index]) for index in missing], setup)  # ruff runs while we parse
    fresh = _measure_sources([decoded(contents[index]) for index in missing])
    by_file: dict[str, list[dict]] = {}
    for finding in lint_findings(lint):
        by_file.setdefault(str(Path(finding["filename"]).resolve()), []).append(
            {"line": (finding.get("location") or {}).get("row"), "rule": finding.get("code"),
             "message": finding.get("message")})
    for index, figures in zip(missing, fresh, strict=True):
        entries[index] = {"figures": figures, "findings": by_file.get(str(files[index].resolve()), [])}
        _keep(folder, keys[index], entries[index])
    return entries


def measure(target: Path, cache: bool = True) -> dict:
    """All metrics of a tree: totals, per-file figures and ruff's findings (names relative to the target)."""
    target = Path(target)
    base = target if target.is_dir() else target.parent
    files = python_files(target)
    per_file, findings = {}, []
    for path, entry in zip(files, measured_files(files, lint_setup(target), cache), strict=True):
        name = str(path.relative_to(base))
        figures = dict(entry["figures"])
        security = sum(1 for f in entry["findings"] if re.fullmatch(r"S\d+", f.get("rule") or ""))
        figures["lint"], figures["security"] = len(entry["findings"]) - security, security
        figures["docstring"] = _percent(figures["documented"], figures["definitions"])
        figures["complexity"] = round(figures["cc_total"] / figures["blocks"], 2) if figures["blocks"] else 0.0
        per_file[name] = figures
        findings.extend({"path": name, **finding} for finding in entry["findings"])
    files = list(per_file.values())
    blocks = sum(f["blocks"] for f in files)
    weights = sum(max(f["sloc"], 1) for f in files)
    return {
        "files": len(files),
        "sloc": sum(f["sloc"] for f in files),
        "docstring": _percent(sum(f["documented"] for f in files), sum(f["definitions"] for f in files)),
        "complexity": round(sum(f["cc_total"] for f in files) / blocks, 2) if blocks else 0.0,
        "maintainability": round(sum(f["maintainability"] * max(f["sloc"], 1) for f in files) / weights, 2)
        if files else 100.0,
        "lint": sum(f["lint"] for f in files),
        "security": sum(f["security"] for f in files),
        "coverage": coverage_percent(target),
        "per_file": per_file,
        "findings": findings,
    }


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 100.0


def summary(metrics: dict) -> dict:
    """The totals without per-file detail (what evolutions store as metrics_before/after)."""
    return {k: v for k, v in metrics.items() if k not in ("per_file", "findings")}


def _meets(value: float, gate: dict) -> bool:
    return value >= gate["threshold"] if gate["direction"] == "min" else value <= gate["threshold"]


def evaluate_gates(metrics: dict, gates: dict, before: dict | None = None) -> list[dict]:
    """Each gate of config/gates.yaml against the metrics: passed True/False, or None with no data.

    With `before` (an evolution's baseline) a gate the code already failed passes when the
    change does not make it worse: an evolution is judged on what it changed (a ratchet).
    """
    results = []
    for name, gate in gates.items():
        value = metrics.get(name)
        baseline = (before or {}).get(name)
        passed, rule = None, "threshold"
        if value is not None:
            passed = _meets(value, gate)
            if not passed and baseline is not None and not _meets(baseline, gate):
                passed = value >= baseline if gate["direction"] == "min" else value <= baseline
                rule = "no regression"
        results.append({"metric": name, "value": value, "threshold": gate["threshold"],
                        "direction": gate["direction"], "unit": gate.get("unit", ""), "passed": passed,
                        "rule": rule, "before": baseline})
    return results


def gates_passed(results: list[dict]) -> bool:
    return all(r["passed"] is not False for r in results)


# How bad a file is for each focus, highest first: the planner picks the worst files.
FOCUS_SCORES = {
    "quality": lambda f: f["lint"] * 2 + (100 - f["docstring"]) / 10 + f["complexity"],
    "docs": lambda f: len(f["doc_missing"]),
    "complexity": lambda f: f["max_complexity"],
    "maintainability": lambda f: 100 - f["maintainability"],
    "security": lambda f: f["security"],
    "lint": lambda f: f["lint"],
}


def worst_files(metrics: dict, focus: str, limit: int = 5) -> list[tuple[str, float]]:
    score = FOCUS_SCORES[focus]
    ranked = sorted(((name, round(score(f), 2)) for name, f in metrics["per_file"].items()),
                    key=lambda item: (-item[1], item[0]))
    return [item for item in ranked if item[1] > 0][:limit]
