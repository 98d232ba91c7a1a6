"""pre_evolution_check: is the system ready to start an evolution on this target?

The context carries `target` (a path string) and `focus`. Checks in SAFETY are never skipped by
run_evolution.py --force; the others only warn under --force.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lib import agents, config, health, paths
from lib.adapters import gitops
from lib.agents import local as local_agents
from lib.checks import Result
from lib.errors import ToolError
from lib.evolution import testing
from lib.health import check
from lib.quality import measure
from lib.store import ACTIVE, open_store
from lib.timeparse import day_bounds, iso, utcnow

GROUP = ("pre-evolution",)
SAFETY = {"environment_ready", "no_active_cycles"}


def run(target: str, focus: str = "quality") -> list[Result]:
    """Every pre-evolution check for the target, at once (pre_evolution_check.py, run_evolution.py)."""
    return health.run(health.select(set(GROUP)), {"target": target, "focus": focus}, default_timeout=30)


def gate(target: str, force: bool, focus: str = "quality") -> tuple[list[Result], list[Result]]:
    """Every result, and those that stop a start: any critical check; under --force only the safety ones."""
    results = run(target, focus)
    return results, [r for r in results if r.status in ("critical", "unknown") and (not force or r.name in SAFETY)]


@check("environment_ready", "evolution", GROUP)
def environment_ready(context: dict) -> tuple[str, str]:
    problems = []
    try:
        for name in ("settings", "agents", "gates"):
            config.load(name)
        for agent in agents.registry():
            agents.runtime(agent)
        for phase in ("research", "plan", "implement", "evaluate"):
            agents.for_phase(phase)
    except Exception as failure:  # every reason is reported in the summary
        problems.append(str(failure))
    target = Path(context["target"])
    try:
        repo = gitops.repo_root(target)
        if gitops.git(repo, "status", "--porcelain", "--untracked-files=no", str(target)):
            note = "; uncommitted changes in the target are not part of the evolution (it works on HEAD)"
        else:
            note = ""
    except Exception as failure:
        problems.append(str(failure))
        repo, note = None, ""
    if problems:
        return "critical", "; ".join(problems)
    return "ok", f"config valid, 4 phases registered, {target} in git repo {repo}{note}"


@check("agents_take_phases", "evolution", GROUP)
def agents_take_phases(context: dict) -> tuple[str, str]:
    """An agent that cannot be called at all (an ECS service) would fail its phase on every cycle."""
    problems = []
    for agent in agents.registry():
        try:
            reason = agents.runtime(agent).cannot_take_phase()
        except ToolError:
            continue  # a runtime that cannot even be made is environment_ready's finding
        if reason:
            problems.append(f"agent {agent['name']} cannot take phase {agent['phase']}: {reason}")
    if problems:
        return "critical", "; ".join(problems)
    return "ok", "every registered agent can take its phase"


@check("agents_fit_the_focus", "evolution", GROUP)
def agents_fit_the_focus(context: dict) -> tuple[str, str]:
    """A registry whose implement agent cannot change code for the focus runs evolutions that end
    unchanged; a model agent without prices spends money the cost limits cannot see."""
    focus = context.get("focus") or "quality"
    problems = []
    implement = agents.for_phase("implement")
    if implement["runtime"] == "local" and focus in local_agents.NEEDS_A_MODEL:
        problems.append(f"the local implement agent cannot change code for focus {focus} "
                        f"({local_agents.NEEDS_A_MODEL[focus]} needs a model): the evolution will end unchanged; "
                        f"register a model implement agent (runtime: bedrock, model_id: ... or runtime: openai, "
                        f"base_url: ..., model: ...) in config/agents.yaml")
    candidates = config.settings()["evolution"]["candidates"]
    if candidates > 1 and all(agent["runtime"] == "local" for agent in agents.registered_for("implement")):
        problems.append(f"evolution.candidates is {candidates} but the implement agents are local ones, which "
                        f"make the same change each time: the {candidates} candidates will be alike; register "
                        f"model or command implement agents, or set evolution.candidates: 1")
    for agent in agents.registry():
        if agent["runtime"] in ("bedrock", "openai") and not (agent.get("price_per_1k_input_usd")
                                                              and agent.get("price_per_1k_output_usd")):
            problems.append(f"{agent['runtime']} agent {agent['name']} has no price_per_1k_input_usd/output_usd: "
                            f"its cost counts as $0 against the cost limits and budgets")
    if problems:
        return "warning", "; ".join(problems)
    return "ok", f"{implement['name']} ({implement['runtime']}) can change code for focus {focus}"


@check("resources_available", "evolution", GROUP)
def resources_available(context: dict) -> tuple[str, str]:
    settings = config.settings()
    folder = paths.history_dir()
    probe = folder if folder.exists() else folder.parent
    free_gb = shutil.disk_usage(probe).free / 1e9
    need = float(settings["health"]["min_free_disk_gb"])
    limits = config.cost_limits()
    parts = [f"{free_gb:.1f} GB free"]
    status = "ok" if free_gb >= need else "critical"
    if limits.get("daily_usd") is not None:
        start, end = day_bounds(utcnow().astimezone().date())
        spent = sum(e["cost_usd"] or 0 for e in open_store().list_evolutions(since=iso(start), until=iso(end)))
        left = limits["daily_usd"] - spent
        parts.append(f"${left:.2f} of ${limits['daily_usd']:.2f} left today")
        if left <= 0:
            status = "critical"
        elif limits.get("per_cycle_usd") and left < limits["per_cycle_usd"] and status == "ok":
            status = "warning"
    if status == "critical" and free_gb < need:
        parts.append(f"need {need:g} GB")
    return status, ", ".join(parts)


@check("no_active_cycles", "evolution", GROUP)
def no_active_cycles(context: dict) -> tuple[str, str]:
    target = str(Path(context["target"]).expanduser().resolve())
    active = open_store().list_evolutions(statuses=ACTIVE)
    same = [e["id"] for e in active if e["target"] == target]
    if same:
        return "critical", f"{same[0]} is already active on {target}"
    others = f"; {len(active)} active on other targets" if active else ""
    return "ok", f"no active evolution on this target{others}"


@check("metrics_baseline", "evolution", GROUP, timeout=120)
def metrics_baseline(context: dict) -> tuple[str, str]:

    target = Path(context["target"])
    if not target.exists():
        return "critical", f"{target} does not exist"
    metrics = measure.measure(target)
    if not metrics["files"]:
        return "warning", f"no Python files under {target}: nothing to measure"
    return "ok", (f"{metrics['files']} files, docstring {metrics['docstring']}%, complexity {metrics['complexity']}, "
                  f"maintainability {metrics['maintainability']}, lint {metrics['lint']}")


@check("tests_runnable", "evolution", GROUP, timeout=150)
def tests_runnable(context: dict) -> tuple[str, str]:
    """The target's test command, found as the runner finds it (DESIGN §5): one that cannot start would fail
    every evolution (test-env); none found leaves the tests `not run`."""
    target = Path(context["target"]).expanduser().resolve()
    try:
        repo = gitops.repo_root(target)
    except ToolError as failure:
        return "unknown", str(failure)
    test_plan = testing.plan(repo, target.relative_to(repo).as_posix())
    if not test_plan.argv:
        return "warning", f"{test_plan.why_none} ({target}): the evolution's tests will be `not run`"
    problem = testing.can_start(test_plan)
    if problem:
        return "critical", problem
    return "ok", f"tests: {test_plan.shown}"


@check("safety_limits_set", "evolution", GROUP)
def safety_limits_set(context: dict) -> tuple[str, str]:
    limits = config.cost_limits()
    timeout = f"{config.phase_timeout():g}s" + ("" if os.environ.get("TIMEOUT_SECONDS") else " (default)")
    cycles = os.environ.get("MAX_CYCLES") or "unset"
    text = f"phase timeout {timeout}, MAX_CYCLES {cycles}"
    if limits.get("daily_usd") is None or limits.get("per_cycle_usd") is None:
        return "warning", f"{text}; no cost limits: python scripts/set_cost_limits.py --daily 100 --per-cycle 10"
    return "ok", f"{text}, ${limits['daily_usd']:g}/day, ${limits['per_cycle_usd']:g}/cycle"
