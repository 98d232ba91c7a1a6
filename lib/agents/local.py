"""The built-in reference agents (runtime `local`): real static analysis, no model.

research measures the target; plan picks the worst files for the focus, skipping files that a
prevention pattern names; implement applies ruff's safe fixes (and the formatter) in the
evolution's worktree, which is a safe change only for the lint-like focuses: for docs,
security and complexity it says so and changes nothing; evaluate checks that every changed
Python file still parses (the runner measures, gates and tests on its own).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import lib
from lib.agents.command import CommandRuntime
from lib.quality import measure, patterns

#: Where `lib` lives: the reference agent's child process imports it from there.
CODE_ROOT = Path(lib.__file__).resolve().parent.parent
# Safe automatic changes per focus: ruff's safe fixes for these rules, and whether to format.
FIX_RULES = {
    "quality": ("E,F,W,I,UP,B", True),
    "lint": ("E,F,W,I,UP,B", False),
    "maintainability": ("F,UP,SIM,C4", True),
}
#: The focuses that fix lint: under the target's own ruff configuration when it has one.
OWN_RULES_FOCUSES = ("quality", "lint")
#: What the reference implement agent cannot do safely, and what could.
NEEDS_A_MODEL = {
    "docs": "writing docstrings", "security": "fixing security findings", "complexity": "splitting complex code",
}


def _target(payload: dict) -> Path:
    return Path(payload["worktree"]) / payload["target"]


def research(payload: dict) -> dict:
    """The runner's measurement, read back: its totals are the input's `metrics`, and the per-file figures and
    findings come from the measurement cache the runner filled for this very content (nothing is measured
    again unless a file changed since)."""
    target = _target(payload)
    metrics = measure.measure(target)
    folder = Path(payload["target"]) if target.is_dir() else Path(payload["target"]).parent
    findings = [{"path": str(folder / f["path"]), "line": f["line"], "rule": f["rule"], "message": f["message"]}
                for f in metrics["findings"]][:200]
    given = payload.get("metrics")
    totals = given if isinstance(given, dict) and given else measure.summary(metrics)
    text = (f"{totals['files']} files, docstring {totals['docstring']}%, complexity {totals['complexity']}, "
            f"maintainability {totals['maintainability']}, lint {totals['lint']}, security {totals['security']}")
    return {"summary": text, "findings": findings, "metrics": totals, "per_file": metrics["per_file"]}


def plan(payload: dict) -> dict:
    focus, target = payload["focus"], payload["target"]
    research_output = payload["context"].get("research") or {}
    per_file = research_output.get("per_file") if isinstance(research_output.get("per_file"), dict) else None
    candidates = [name for name, _ in measure.worst_files(
        {"per_file": per_file or measure.measure(_target(payload))["per_file"]}, focus, limit=10)]
    in_repo = {name: (f"{target}/{name}" if target not in ("", ".") else name) for name in candidates}
    skipped = [{"file": in_repo[name], "pattern": pattern["id"]} for name in candidates
               for pattern in payload["patterns"]
               if pattern["kind"] == "prevention" and patterns.names_file(pattern, in_repo[name])]
    files = [in_repo[name] for name in candidates if in_repo[name] not in {s["file"] for s in skipped}][:5]
    return {"files": files, "rationale": f"the worst files for {focus}", "skipped": skipped}


def implement(payload: dict) -> dict:
    focus = payload["focus"]
    if focus in NEEDS_A_MODEL:
        return {"patch": "", "summary": f"no safe change exists for {focus} without a model "
                                         f"({NEEDS_A_MODEL[focus]}); register a bedrock implement agent"}
    rules, formats = FIX_RULES[focus]
    worktree = Path(payload["worktree"])
    files = [str(worktree / entry["path"]) for entry in payload["files"]]
    if not files:
        return {"changed_files": [], "summary": "nothing planned"}
    setup = measure.lint_setup(_target(payload))
    before = _findings_per_file(files, setup)
    ruff = measure.ruff_bin()
    if setup.own_config and focus in OWN_RULES_FOCUSES:  # DESIGN §5: lint is the target's own
        rules = f"its own rules ({setup.own_config.name})"
        _run([ruff, "check", "--no-cache", "--force-exclude", "--fix", "--exit-zero", *files], worktree)
    else:
        _run([ruff, "check", "--no-cache", "--fix", "--select", rules, "--exit-zero", *files], worktree)
    if formats:
        _run([ruff, "format", "--no-cache", "--force-exclude", *files], worktree)
    # The formatter can move a suppression comment off its line: keep no file that got worse.
    worse = [name for name, count in _findings_per_file(files, setup).items() if count > before.get(name, 0)]
    if worse:
        subprocess.run(["git", "checkout", "--", *worse], cwd=worktree, capture_output=True, check=True)
    changed = subprocess.run(["git", "diff", "--name-only", "HEAD"], cwd=worktree, capture_output=True, text=True,
                             check=True).stdout.split()
    kept_back = f"; {len(worse)} file(s) left alone because the fix made them worse" if worse else ""
    return {"changed_files": changed,
            "summary": f"ruff safe fixes ({rules})" + (" and format" if formats else "") + kept_back}


def _findings_per_file(files: list[str], setup: measure.LintSetup) -> dict[str, int]:
    """Lint and security findings per file (absolute paths), as the runner will count them."""
    counts = dict.fromkeys(files, 0)
    for finding in measure.lint_findings_of(files, setup):
        name = str(Path(finding["filename"]).resolve())
        counts[name] = counts.get(name, 0) + 1
    return counts


def evaluate(payload: dict) -> dict:
    worktree = Path(payload["worktree"])
    broken = []
    for name in payload["context"].get("runner", {}).get("files_changed", []):
        path = worktree / name
        if path.suffix == ".py" and path.is_file():
            try:
                ast.parse(path.read_text(encoding="utf-8", errors="replace"))
            except SyntaxError as bad:
                broken.append(f"{name}:{bad.lineno}: {bad.msg}")
    if broken:
        return {"verdict": "fail", "notes": "does not parse: " + "; ".join(broken[:5])}
    return {"verdict": "pass", "notes": "every changed Python file parses"}


def _run(argv: list[str], cwd: Path) -> None:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"{Path(argv[0]).name} {argv[1]} exited {result.returncode}: {result.stderr.strip()[-300:]}")


PHASES = {"research": research, "plan": plan, "implement": implement, "evaluate": evaluate}


class LocalRuntime(CommandRuntime):
    """Runs the reference agent as a child process (`python -m lib.agents.local`), so that the process rules
    of DESIGN §5 hold for it as for a command agent: its own session, its task id in its environment, the
    whole tree (ruff included) ended at the phase timeout, its output read with the same bounds."""

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "lib.agents.local"]

    def label(self, argv: list[str]) -> str:
        return self.name

    def cwd(self) -> Path:
        return CODE_ROOT

    def status(self) -> dict:
        return {"state": "available", "version": f"built-in {lib.__version__}", "capacity": "per call",
                "detail": f"reference {self.agent['phase']} agent"}


def main() -> None:
    """One call of the reference agent: the §5 input on stdin, the reply on stdout; a failure of the
    handler is the agent's error, not a crash."""
    payload = json.load(sys.stdin)
    try:
        reply = {"status": "ok", "output": PHASES[payload["phase"]](payload), "error": None}
    except Exception as failure:  # reported as the agent's error
        reply = {"status": "error", "output": None, "error": f"{type(failure).__name__}: {failure}"}
    json.dump({**reply, "cost_usd": 0.0, "tokens": 0}, sys.stdout)


if __name__ == "__main__":
    main()
