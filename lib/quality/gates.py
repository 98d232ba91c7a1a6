"""The quality gates of config/gates.yaml on the evolution targets: which targets, their
results as check results (check_metrics.py, health_check.py), the worst files per gate,
and the security findings count behind SecurityGateFailures.

Targets are the settings' evolution.default_target and EVOLUTION_TARGET (relative paths
resolve from the working directory, as run_evolution.py resolves --target); --all adds
every target the history has seen. The measuring itself is lib/quality/measure.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from lib import config
from lib.checks import Perf, Result, limit
from lib.quality import measure

# For --verbose: how to rank files for each gate (worst first) and the figure to show.
GATE_FILE_FIGURES = {
    "docstring": (lambda f: f["docstring"], False),
    "complexity": (lambda f: f["complexity"], True),
    "maintainability": (lambda f: f["maintainability"], False),
    "security": (lambda f: f["security"], True),
}


def default_targets() -> list[str]:
    """settings evolution.default_target and EVOLUTION_TARGET, in that order, once each."""
    names = [config.settings()["evolution"]["default_target"], os.environ.get("EVOLUTION_TARGET", "").strip()]
    return list(dict.fromkeys(n for n in names if n))


def targets(store, every: bool = False, explicit: tuple = ()) -> tuple[list[Path], list[str]]:
    """(existing target folders, names that do not exist); --all adds every target in the store."""
    names = list(explicit) or default_targets()
    if every:
        everything = ("0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00")
        names += [row["target"] for row in store.evolution_stats([everything], group_by="target")]
    found, missing = [], []
    for name in dict.fromkeys(names):
        path = Path(name).expanduser().resolve()
        if path.exists():
            found.append(path)
        else:
            missing.append(name)
    return list(dict.fromkeys(found)), missing


def worst_files(measured: dict, gate: str, limit: int = 5) -> list[dict]:
    """The files that pull a gate down the most (coverage has no per-file figure here)."""
    if gate not in GATE_FILE_FIGURES:
        return []
    figure, high_is_bad = GATE_FILE_FIGURES[gate]
    files = [(name, figure(f)) for name, f in measured["per_file"].items()
             if gate != "docstring" or f["definitions"]]
    files.sort(key=lambda item: (-item[1] if high_is_bad else item[1], item[0]))
    if high_is_bad:
        files = [item for item in files if item[1] > 0]
    return [{"file": name, "value": value} for name, value in files[:limit]]


def gate_report(target: Path, verbose: bool = False) -> dict:
    """The gates of config/gates.yaml on one target: {target, gates: [...]} with worst files when verbose."""

    measured = measure.measure(target)
    results = measure.evaluate_gates(measured, config.gates())
    for result in results:
        result["status"] = "no-data" if result["passed"] is None else "passed" if result["passed"] else "failed"
        if verbose:
            result["worst_files"] = worst_files(measured, result["metric"])
    return {"target": str(target), "files": measured["files"], "gates": results}


def security_findings(store) -> int | None:
    """SecurityGateFailures: the security audit's count when recorded, else the security gate's findings."""
    recorded = store.get_meta("security-findings")
    if isinstance(recorded, dict):
        recorded = recorded.get("count", len(recorded.get("findings", [])) if "findings" in recorded else None)
    elif isinstance(recorded, list):
        recorded = len(recorded)
    if isinstance(recorded, int | float) and not isinstance(recorded, bool):
        return int(recorded)

    found, _ = targets(store)
    if not found:
        return None
    return sum(len(measure.ruff_findings(path, measure.SECURITY_RULES)) for path in found)



# ---- as check results ------------------------------------------------------------------------------


def _gate_summary(gate: dict) -> str:
    sign = ">=" if gate["direction"] == "min" else "<="
    unit = gate["unit"] if gate["unit"] == "%" else f" {gate['unit']}".rstrip()
    if gate["value"] is None:
        return f"no data (gate {sign} {gate['threshold']:g}{unit})"
    return f"{gate['value']:g}{unit} (gate {sign} {gate['threshold']:g}{unit}) {gate['status']}"


def gate_results(found: list[Path], missing: list[str], verbose: bool) -> list:
    """Check results of every gate on every existing target; unknown when no target exists."""


    if not found:
        names = ", ".join(missing) or "none configured"
        return [Result("targets", "gates", "unknown", f"no evolution target exists ({names}); set EVOLUTION_TARGET "
                       "or settings evolution.default_target", 0)]
    results = []
    for target in found:
        started = time.monotonic()
        report = gate_report(target, verbose)
        elapsed = int((time.monotonic() - started) * 1000)
        for gate in report["gates"]:
            status = {"passed": "ok", "failed": "critical", "no-data": "ok"}[gate["status"]]
            details = {"target": str(target), "value": gate["value"], "threshold": gate["threshold"],
                       "direction": gate["direction"]}
            if verbose:
                details["worst_files"] = gate["worst_files"]
            figure = Perf(gate["metric"], gate["value"], gate["unit"], crit=limit(gate["threshold"], gate["direction"]))
            results.append(Result(gate["metric"], f"gates {_short(target)}", status, _gate_summary(gate), elapsed,
                                  details, (figure,)))
    return results


def _short(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd())) or "."
    except ValueError:
        return str(path)


def worst_file_rows(results: list) -> list[dict]:
    """--verbose: the worst files of each gate as table rows."""
    rows = []
    for result in results:
        for item in result.details.get("worst_files", []):
            rows.append({"target": result.area.removeprefix("gates "), "gate": result.name, "file": item["file"],
                         "value": item["value"]})
    return rows
