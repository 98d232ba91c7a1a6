"""The built-in reference agents (runtime `local`): real static analysis, no LLM.

research measures the target; plan picks the worst files for the focus (skipping
prevention patterns); implement applies ruff's safe fixes and formatter in the
evolution's worktree; evaluate re-measures, runs the target's tests when configured
and applies config/gates.yaml.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import lib
from lib import config
from lib.adapters import gitops
from lib.agents import AgentError, Runtime
from lib.quality import measure

# Safe automatic changes per focus: ruff's safe fixes for these rules, and the formatter.
FIX_RULES = {
    "quality": ("E,F,W,I,UP,B", True),
    "lint": ("E,F,W,I,UP,B", False),
    "maintainability": ("F,UP,SIM,C4", True),
    "complexity": ("SIM,C4,RET", False),
    "docs": ("D", False),
    "security": ("S", False),
}


def research(payload: dict) -> dict:
    metrics = measure.measure(Path(payload["target"]))
    return {"metrics": measure.summary(metrics), "per_file": metrics["per_file"]}


def plan(payload: dict) -> dict:
    from lib.quality import patterns
    from lib.store import open_store

    focus = payload["focus"]
    research_output = payload["context"]["research"]
    candidates = [name for name, _ in measure.worst_files(
        {"per_file": research_output["per_file"]}, focus, limit=10)]
    rules, formats = FIX_RULES[focus]
    change_kind = f"ruff-fix:{rules}" + ("+format" if formats else "")
    blocked = patterns.blocked(open_store(), candidates, change_kind)
    skipped = [{"file": name, "pattern": pattern["id"]} for name, pattern in blocked]
    files = [name for name in candidates if name not in {s["file"] for s in skipped}][:5]
    return {"files": files, "change_kind": change_kind, "rules": rules, "format": formats, "skipped": skipped}


def implement(payload: dict) -> dict:
    chosen = payload["context"]["plan"]
    target = Path(payload["target"])
    worktree = Path(payload["context"]["worktree"])
    files = [str(target / name) if target.is_dir() else str(target) for name in chosen["files"]]
    if files:
        ruff = measure.ruff_bin()
        _run([ruff, "check", "--no-cache", "--fix", "--select", chosen["rules"], "--exit-zero", *files], worktree)
        if chosen["format"]:
            _run([ruff, "format", "--no-cache", *files], worktree)
    return {"changed_files": gitops.changed_files(worktree), "change_kind": chosen["change_kind"]}


def evaluate(payload: dict) -> dict:
    after = measure.summary(measure.measure(Path(payload["target"])))
    gates = measure.evaluate_gates(after, config.gates(), before=payload["context"]["research"].get("metrics"))
    tests = run_tests(Path(payload["context"]["worktree"]))
    passed = measure.gates_passed(gates) and tests.get("passed") is not False
    return {"metrics": after, "gates": gates, "tests": tests, "passed": passed}


def run_tests(worktree: Path) -> dict:
    """The target's test command (settings evolution.test_command), run in the worktree."""
    command = config.settings()["evolution"]["test_command"]
    if not command:
        return {"passed": None, "summary": "no test command configured"}
    argv = command.split() if isinstance(command, str) else list(command)
    try:
        result = subprocess.run(argv, cwd=worktree, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as failure:
        return {"passed": False, "summary": f"{' '.join(argv)}: {failure}"}
    tail = (result.stdout + result.stderr).strip().splitlines()[-1:] or [""]
    return {"passed": result.returncode == 0, "summary": f"exit {result.returncode}: {tail[0][:200]}"}


def _run(argv: list[str], cwd: Path) -> None:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"{Path(argv[0]).name} {argv[1]} exited {result.returncode}: {result.stderr.strip()[-300:]}")


PHASES = {"research": research, "plan": plan, "implement": implement, "evaluate": evaluate}


class LocalRuntime(Runtime):
    """Runs the reference agent in this process, in a thread bounded by the phase timeout."""

    def invoke(self, payload: dict, timeout: float) -> dict:
        handler = PHASES[payload["phase"]]
        outcome: dict = {}

        def work():
            try:
                outcome["output"] = handler(payload)
            except Exception as failure:  # reported as the agent's error, not a crash of the runner
                outcome["error"] = f"{type(failure).__name__}: {failure}"

        worker = threading.Thread(target=work, name=f"agent-{self.name}", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise AgentError(f"timeout: {self.name} did not finish within {timeout:g}s")
        if "error" in outcome:
            return {"status": "error", "output": None, "cost_usd": 0.0, "tokens": 0, "error": outcome["error"]}
        return {"status": "ok", "output": outcome["output"], "cost_usd": 0.0, "tokens": 0, "error": None}

    def status(self) -> dict:
        return {"state": "available", "version": f"built-in {lib.__version__}", "capacity": "in-process",
                "detail": f"reference {self.agent['phase']} agent"}
