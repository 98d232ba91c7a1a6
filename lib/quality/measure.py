"""Quality metrics of a code tree, shared by the research/evaluate agents, check_metrics.py and CI.

Real static analysis: docstring coverage from the AST, cyclomatic complexity and the
maintainability index from radon, lint and security findings from ruff (its bandit
rules, S), size in source lines, and test coverage from a coverage report when one exists.
"""

from __future__ import annotations

import ast
import concurrent.futures
import json
import multiprocessing
import os
import re
import subprocess
from pathlib import Path

SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules", ".tox", ".mypy_cache", ".ruff_cache", "build",
             "dist", "evolution_history"}
LINT_RULES = "E,F,W,B,UP"
SECURITY_RULES = "S"
# Bandit rules that flag ordinary subprocess use, asserts and non-crypto randomness: noise here.
SECURITY_IGNORED = "S101,S311,S404,S603,S607"
#: below this many files per worker process, starting the processes costs more than it saves
PARALLEL_FILES_PER_WORKER = 20


def python_files(target: Path) -> list[Path]:
    target = Path(target)
    if target.is_file():
        return [target]
    return sorted(p for p in target.rglob("*.py") if not SKIP_DIRS & set(p.relative_to(target).parts[:-1]))


def _docstring_counts(tree: ast.AST) -> tuple[int, int, list[str]]:
    """(documented, total, names missing one) over the module and its public classes and functions."""
    documented, total, missing = 0, 0, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("_"):
            continue
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            total += 1
            if ast.get_docstring(node):
                documented += 1
            else:
                missing.append(getattr(node, "name", "<module>"))
    return documented, total, missing


def ruff_bin() -> str:
    from ruff.__main__ import find_ruff_bin

    return find_ruff_bin()


def ruff_findings(target: Path, rules: str) -> list[dict]:
    """ruff's findings for the rules, as its JSON (filename, code, message, location)."""
    return ruff_findings_of([str(target)], rules)


def ruff_findings_of(paths: list[str], rules: str) -> list[dict]:
    """ruff's findings for the rules in several files or folders at once."""
    result = subprocess.run(
        [ruff_bin(), "check", "--no-cache", "--select", rules, "--ignore", SECURITY_IGNORED,
         "--output-format", "json", "--exit-zero", *paths],
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


def measure_file(path: Path) -> dict:
    """One file's figures from a single parse; a file that does not parse has a syntax_error."""
    from radon.metrics import h_visit_ast, mi_compute
    from radon.raw import analyze
    from radon.visitors import ComplexityVisitor

    source = path.read_text(encoding="utf-8", errors="replace")
    try:
        tree = ast.parse(source)
        raw = analyze(source)
    except (SyntaxError, ValueError) as bad:
        return {"sloc": 0, "documented": 0, "definitions": 0, "doc_missing": [], "blocks": 0, "cc_total": 0,
                "max_complexity": 0, "maintainability": 0.0, "syntax_error": str(bad)}
    documented, total, missing = _docstring_counts(tree)
    complexity = ComplexityVisitor.from_ast(tree)  # one visit gives the blocks and the total
    blocks = complexity.blocks
    comments = (raw.comments + raw.multi) / raw.sloc * 100 if raw.sloc else 0
    maintainability = mi_compute(h_visit_ast(tree).total.volume, complexity.total_complexity, raw.lloc, comments)
    return {
        "sloc": raw.sloc,
        "documented": documented,
        "definitions": total,
        "doc_missing": missing,
        "blocks": len(blocks),
        "cc_total": sum(b.complexity for b in blocks),
        "max_complexity": max((b.complexity for b in blocks), default=0),
        "maintainability": round(maintainability, 2),
    }


def _measure_files(files: list[Path], meanwhile) -> list:
    """measure_file over every file, then what `meanwhile()` returned (ruff, run while radon works).

    With enough files the parsing runs in forked worker processes; radon is imported first so that
    the children import nothing.
    """
    workers = min(os.cpu_count() or 1, len(files) // PARALLEL_FILES_PER_WORKER)
    if workers < 2:
        return [measure_file(path) for path in files] + [meanwhile()]
    import radon.metrics  # noqa: F401 - loaded once here, inherited by the workers
    import radon.raw  # noqa: F401
    import radon.visitors  # noqa: F401

    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        parsed = pool.map(measure_file, files, chunksize=max(1, len(files) // (workers * 4)))
        extra = meanwhile()
        return [*parsed, extra]


def measure(target: Path) -> dict:
    """All metrics of a tree: totals plus per-file figures (keys relative to the target)."""
    target = Path(target)
    base = target if target.is_dir() else target.parent
    files = python_files(target)
    figures = _measure_files(files, lambda: ruff_findings(target, f"{LINT_RULES},{SECURITY_RULES}"))
    findings = figures.pop()
    per_file = dict(zip((str(path.relative_to(base)) for path in files), figures, strict=True))
    for finding in findings:
        kind = "security" if re.fullmatch(r"S\d+", finding.get("code") or "") else "lint"
        name = str(Path(finding["filename"]).resolve().relative_to(base.resolve()))
        if name in per_file:
            per_file[name][kind] = per_file[name].get(kind, 0) + 1
    for figures in per_file.values():
        figures.setdefault("lint", 0)
        figures.setdefault("security", 0)
        figures["docstring"] = _percent(figures["documented"], figures["definitions"])
        figures["complexity"] = round(figures["cc_total"] / figures["blocks"], 2) if figures["blocks"] else 0.0
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
    }


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 100.0


def summary(metrics: dict) -> dict:
    """The totals without per-file detail (what evolutions store as metrics_before/after)."""
    return {k: v for k, v in metrics.items() if k != "per_file"}


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


# The metrics each focus sets out to move: what the history's IMPACT and the monthly report show.
FOCUS_METRICS = {
    "quality": ("lint", "docstring"),
    "docs": ("docstring",),
    "complexity": ("complexity",),
    "maintainability": ("maintainability",),
    "security": ("security",),
    "lint": ("lint",),
}


def worst_files(metrics: dict, focus: str, limit: int = 5) -> list[tuple[str, float]]:
    score = FOCUS_SCORES[focus]
    ranked = sorted(((name, round(score(f), 2)) for name, f in metrics["per_file"].items()),
                    key=lambda item: (-item[1], item[0]))
    return [item for item in ranked if item[1] > 0][:limit]
