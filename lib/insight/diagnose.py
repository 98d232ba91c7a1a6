"""Why an evolution or a task failed, for show_failure, analyze_failure and the incident report.

The answer is assembled from what the runner leaves behind (DESIGN §4, §5): the task
records, the task artifact (input, output, error, stderr tail), the evolution's log and
the store's other failures. Error texts start with a class and a colon (`timeout:`,
`exit-code:`, ...) and each class has its own next steps.
"""

from __future__ import annotations

import json
import re
import shlex
import socket
from datetime import timedelta
from pathlib import Path

from lib import config, humanize, paths, timeparse
from lib.errors import NotFound, ToolError, UsageError
from lib.insight import history
from lib.log import mask_secrets, masked
from lib.quality import refusals
from lib.store import ACTIVE, ENDED_BADLY, Store

TASK_ID = re.compile(r"^task-[\w-]+$")
EVOLUTION_ID = re.compile(r"^evo-[\w-]+$")
_LOG_TAG = re.compile(r"^\S+ \S+(?: [A-Z]+)? \[cycle (?P<cycle>\d+)/\d+(?: (?P<phase>[\w-]+))?\]")
_PHASE_FAILED = re.compile(r"^[\w-]+ failed \(task [\w-]+\): (?P<error>.*)$", re.S)
#: An evolution's error after several refused attempts (DESIGN §5): classed by the last one.
_ATTEMPTS_REFUSED = re.compile(r"^\d+ attempts refused; last: (?P<error>.*)$", re.S)
#: An attempt none of whose candidates passed (DESIGN §5 Candidates): classed by its first candidate's refusal.
_CANDIDATES_REFUSED = re.compile(r"^no candidate passed: candidate \d+ \([^)]*\): (?P<error>.*)$", re.S)

#: similar failures are searched among the newest failures of the last SIMILAR_DAYS: bounded, so a big
#: store stays fast
SIMILAR_WINDOW = 2000
SIMILAR_DAYS = 30
SIMILAR_SHOWN = 5
LOG_CONTEXT = 3
LOG_LIMIT = 40
_ALIASES = {"cleaned up": "killed"}

_STEPS = {
    "timeout": [
        "Agent {agent} did not answer within its time limit (TIMEOUT_SECONDS, default 3600 s per phase, "
        "or timeout_seconds in config/agents.yaml).",
        "Is it responding? python scripts/agent_status.py --all",
        "Its resources: python scripts/check_resource_usage.py --agent {agent}",
        "Restart it: python scripts/restart_agent.py --name {agent}",
        "A large target may need longer: export TIMEOUT_SECONDS=7200 before the next run_evolution.py.",
    ],
    "exit-code": [
        "Agent {agent} exited with an error; its stderr tail: python scripts/show_failure.py --id {task}",
        "{replay}",
        "Fix the agent (or its configuration in config/agents.yaml), then run the evolution again.",
    ],
    "bad-output": [
        "Agent {agent} printed something that is not the agent contract's JSON document "
        "({{status: ok|error, output, cost_usd, tokens, error}}); what it printed: "
        "python scripts/show_failure.py --id {task}",
        "An agent must print only that document on stdout; logs belong on stderr.",
        "{replay}",
    ],
    "escaped": [
        "Agent {agent} changed your checkout or its git settings outside its worktree; nothing was committed, "
        "but the runner only detects: what it changed is still there.",
        "See what changed: git -C {target} status; git -C {target} config --list --local; "
        "ls -l $(git -C {target} rev-parse --git-common-dir)/hooks (a hook runs at your next commit)",
        "Undo what you did not write, fix the agent to write only in the `worktree` its input names, then run "
        "the evolution again.",
    ],
    "agent-error": [
        "Agent {agent} answered with status error; its message is the error above.",
        "{logs}",
        "Its state: python scripts/agent_status.py --all",
    ],
    "cost-limit": [
        "The evolution stopped at a cost limit (config/cost_limits.yaml); nothing is broken.",
        "Where the money went: python scripts/cost_analysis.py --breakdown",
        "Raise the limits if the spend is expected: python scripts/set_cost_limits.py --daily 100 --per-cycle 10",
        "Or start again tomorrow, when the daily budget resets.",
    ],
    "gates-failed": [
        "The change did not pass the quality gates (config/gates.yaml); no PR was opened.",
        "The current metrics: python scripts/check_metrics.py --verbose",
        "Adjust a threshold if it is wrong: python scripts/adjust_gates.py --metric docstring --threshold 75",
        "Or work on the underlying issues: python scripts/run_evolution.py --focus quality --force",
    ],
    "bad-patch": [
        "The runner refused the agent's change under the patch rules (DESIGN §5); each attempt's reason: "
        "python scripts/analyze_failure.py --id {evolution}",
        "The change itself is in the task's output: python scripts/show_failure.py --id {task}",
        "Deletions are refused unless evolution.allow_deletions: true (config/settings.yaml).",
    ],
    "tests-weakened": [
        "The change deleted, renamed or skipped tests, or fewer tests ran than on the base: refused.",
        "Each attempt's reason: python scripts/analyze_failure.py --id {evolution}",
    ],
    "test-env": [
        "The target's test command cannot start; the fix is named in the error above.",
        "Check before the next start: python scripts/pre_evolution_check.py --target {target}",
    ],
    "stopped": [
        "An operator (or Ctrl-C under --monitor) asked for a stop; nothing failed.",
        "Start again when ready: python scripts/run_evolution.py --target {target} --focus {focus}",
    ],
    "killed": [
        "The runner process ended without finishing (kill -9, a force stop, a crash or a reboot).",
        "Anything left behind: python scripts/check_stuck_processes.py",
        "Remove its worktree and temporary files: python scripts/cleanup.py --evolution {evolution}",
        "Start again when ready: python scripts/run_evolution.py --target {target} --focus {focus}",
    ],
    "runner": [
        "The runner itself failed (not an agent); its own output is in {runner_stderr}",
        "Check the installation: python scripts/health_check.py",
        "If it keeps happening, run it in the foreground with DEBUG=true: "
        "DEBUG=true python scripts/run_evolution.py --target {target} --focus {focus} --monitor",
    ],
    "other": [
        "Read the error and the log lines above; the task's details: python scripts/show_failure.py --id {task}",
    ],
}


# ---- ids, classes, files ------------------------------------------------------------------

def check_id(value: str, kind: str) -> str:
    """A task or evolution id, or a usage error saying which command takes what was given."""
    value = value.strip()
    own, other = (TASK_ID, EVOLUTION_ID) if kind == "task" else (EVOLUTION_ID, TASK_ID)
    if own.match(value):
        return value
    if other.match(value):
        command = "analyze_failure.py" if kind == "task" else "show_failure.py"
        hint = f"that is {'an evolution' if kind == 'task' else 'a task'} id: python scripts/{command} --id {value}"
    else:
        hint = f"{kind} ids look like {'task' if kind == 'task' else 'evo'}-20240115093000-1a2b3c"
    raise UsageError(f"{value!r} is not {'a task' if kind == 'task' else 'an evolution'} id", hint)


def error_class(error: str | None) -> str:
    """The class an error text starts with (timeout, exit-code, ...), '' without an error."""
    if not error:
        return ""
    nested = _PHASE_FAILED.match(error) or _ATTEMPTS_REFUSED.match(error) or _CANDIDATES_REFUSED.match(error)
    if nested:
        return error_class(nested.group("error"))
    head = error.split(":", 1)[0].strip()
    head = _ALIASES.get(head, head)
    return head if head in _STEPS else "other"


def artifact_path(task: dict) -> Path:
    return paths.evolution_dir(task["evolution_id"]) / "tasks" / f"{task['id']}.json"


def artifact(task: dict) -> dict:
    """The task's artifact ({input, output, error, stderr_tail}) plus its path, or why there is none."""
    path = artifact_path(task)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"path": str(path), "missing": "no artifact (the task did not finish, or it was pruned)"}
    except (OSError, ValueError) as broken:
        return {"path": str(path), "missing": f"unreadable artifact: {broken}"}
    return {"path": str(path), **(data if isinstance(data, dict) else {"output": data})}


def read_log(evolution_id: str) -> list[str]:
    path = paths.evolution_dir(evolution_id) / "evolution.log"
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []


def log_excerpt(lines: list[str], cycle: int | None = None, phase: str | None = None,
                context: int = LOG_CONTEXT, limit: int = LOG_LIMIT) -> list[str]:
    """The lines of one cycle's phase with a few lines either side; else the end of the log."""
    hits = []
    if phase:
        for index, line in enumerate(lines):
            tag = _LOG_TAG.match(line)
            if tag and tag["phase"] == phase and (cycle is None or int(tag["cycle"]) == cycle):
                hits.append(index)
    if hits:
        chosen = lines[max(0, hits[0] - context): hits[-1] + context + 1]
    else:
        chosen = lines[-limit:]
    if len(chosen) > limit:  # the end of a long phase is where it failed
        chosen = [f"... ({len(chosen) - limit + 1} earlier lines not shown)", *chosen[-(limit - 1):]]
    return [mask_secrets(line) for line in chosen]


# ---- the failure and what is like it --------------------------------------------------------

def failure_of(evolution: dict, task: dict | None) -> dict:
    """Where and how it failed: task, phase, agent, cycle, error, error_class, trace_id."""
    error = (task or {}).get("error")
    if not error and (task is None or task.get("status") != "succeeded"):
        error = evolution.get("error")
    phase = (task or {}).get("phase") or ("gate" if error_class(error) == "gates-failed" else
                                          evolution.get("current_phase") or "")
    return {
        "task_id": (task or {}).get("id"), "phase": phase, "agent": (task or {}).get("agent"),
        "cycle": (task or {}).get("cycle") or evolution.get("current_cycle"),
        "error": error, "error_class": error_class(error), "trace_id": (task or {}).get("trace_id"),
    }


def failing_task(evolution: dict, tasks: list[dict]) -> dict | None:
    """The last failed task; for an evolution that ended badly without one, the task it cut short."""
    failed = [t for t in tasks if t.get("status") == "failed"]
    if failed:
        return failed[-1]
    if evolution.get("status") in ENDED_BADLY:
        cut_short = [t for t in tasks if t.get("status") == "running"]
        return cut_short[-1] if cut_short else None
    return None


def similar_failures(store: Store, failure: dict, evolution_id: str) -> dict:
    """Past failures of the same class in the same phase (tasks), or of the same class (evolutions)."""
    klass = failure["error_class"]
    result = {"count": 0, "looked_at": 0, "days": SIMILAR_DAYS, "recent": []}
    if not klass:
        return result
    since = timeparse.iso(timeparse.utcnow() - timedelta(days=SIMILAR_DAYS))
    if failure.get("task_id") and failure.get("agent"):
        candidates = store.list_tasks(since=since, statuses=("failed",), limit=SIMILAR_WINDOW)
        matches = [{"evolution_id": t["evolution_id"], "task_id": t["id"], "started_at": t.get("started_at"),
                    "phase": t.get("phase"), "agent": t.get("agent"), "error": t.get("error")}
                   for t in candidates
                   if t["evolution_id"] != evolution_id and t.get("phase") == failure["phase"]
                   and error_class(t.get("error")) == klass]
    else:
        candidates = store.list_evolutions(since=since, statuses=ENDED_BADLY, limit=SIMILAR_WINDOW)
        matches = [{"evolution_id": e["id"], "task_id": None, "started_at": e.get("started_at"),
                    "phase": failure["phase"], "agent": None, "error": e.get("error")}
                   for e in candidates if e["id"] != evolution_id and error_class(e.get("error")) == klass]
    return {**result, "count": len(matches), "looked_at": len(candidates), "recent": masked(matches[:SIMILAR_SHOWN])}


def _agent_hints(agent_name: str | None, task: dict | None, evolution_id: str) -> dict:
    """Where the agent's own logs are and how to replay its call, by runtime (config/agents.yaml)."""

    try:
        spec = next((a for a in config.agents() if a["name"] == agent_name), {})
    except ToolError:
        spec = {}
    runtime = spec.get("runtime")
    hints = {"logs": "The runner's own output (local agents run inside it): "
                     f"{paths.evolution_dir(evolution_id) / 'runner.stderr'}", "replay": ""}
    if runtime == "lambda":
        hints["logs"] = f"Its logs: aws logs tail /aws/lambda/{spec.get('function_name') or agent_name} --since 1h"
    elif runtime == "ecs" and spec.get("task_definition") and task:
        cluster = spec.get("cluster") or config.settings()["aws"]["ecs_cluster"]
        hints["logs"] = (f"Its task (one per phase call): aws ecs list-tasks --cluster {cluster} "
                         f"--started-by {task['id']} --desired-status STOPPED; its input and output: "
                         f"aws s3 ls s3://{config.backup_bucket()}/agent-io/{task['id']}/")
    elif runtime == "ecs":
        hints["logs"] = (f"Its service: aws ecs describe-services --cluster {spec.get('cluster')} "
                         f"--services {spec.get('service')}")
    elif runtime == "command" and task:
        command = spec.get("command")
        argv = command if isinstance(command, list) else shlex.split(command or "")
        hints["logs"] = f"Its stderr tail: python scripts/show_failure.py --id {task['id']}"
        hints["replay"] = (
            "Replay the call by hand, from the project root: python -c \"import json,sys; "
            "print(json.dumps(json.load(open(sys.argv[1]))['input']))\" "
            f"{shlex.quote(str(artifact_path(task)))} | {shlex.join(str(a) for a in argv)}")
    return hints


def next_steps(failure: dict, evolution: dict, task: dict | None = None) -> list[str]:
    """What an on-call engineer does next, for this error class, with commands to paste."""
    klass = failure["error_class"]
    if not klass:
        return []
    values = {
        "agent": failure.get("agent") or "<agent_name>", "task": failure.get("task_id") or "<task_id>",
        "evolution": evolution["id"], "target": shlex.quote(evolution.get("target") or ""),
        "focus": evolution.get("focus") or "quality",
        "runner_stderr": paths.evolution_dir(evolution["id"]) / "runner.stderr",
        **_agent_hints(failure.get("agent"), task, evolution["id"]),
    }
    steps = [step.format_map(values) for step in _STEPS[klass]]
    if failure.get("task_id") and klass != "other":
        steps.append(f"All details of the task: python scripts/show_failure.py --id {failure['task_id']}")
    if failure.get("trace_id"):
        steps.append(f"Where the time went: python scripts/trace_execution.py --trace-id {failure['trace_id']}")
    if failure.get("task_id"):
        steps.append(f"For the incident: python scripts/generate_failure_report.py --id {failure['task_id']} "
                     "--output report.md")
    return [step for step in steps if step]


# ---- the three views ----------------------------------------------------------------------------

def _get_task(store: Store, task_id: str) -> dict:
    task = store.get_task(check_id(task_id, "task"))
    if not task:
        raise NotFound(f"unknown task {task_id.strip()!r}",
                       "find task ids with python scripts/analyze_failure.py --id <evolution_id>")
    return task


def _evolution_of(store: Store, task: dict) -> dict:
    return store.get_evolution(task["evolution_id"]) or {"id": task["evolution_id"], "status": "unknown"}


def task_failure(store: Store, task_id: str) -> dict:
    """show_failure: the task record, its evolution, artifact, log lines, error class and next steps."""
    task = _get_task(store, task_id)
    evolution = _evolution_of(store, task)
    failure = failure_of(evolution, task)
    return masked({
        **task,
        "evolution": {key: evolution.get(key) for key in ("id", "target", "focus", "status", "error")},
        "error_class": failure["error_class"],
        "artifact": artifact(task),
        "log_excerpt": log_excerpt(read_log(task["evolution_id"]), task.get("cycle"), task.get("phase")),
        "next_steps": next_steps(failure, evolution, task) if task.get("status") != "succeeded" else [],
    })


def analyze(store: Store, evolution_id: str) -> dict:
    """analyze_failure: the evolution with its tasks, the failure, log lines, similar failures, next steps."""
    evolution = store.evolution_or_fail(check_id(evolution_id, "evolution"))
    tasks = store.list_tasks(evolution_id=evolution["id"])
    task = failing_task(evolution, tasks)
    failed = evolution["status"] in ENDED_BADLY or task is not None
    failure = failure_of(evolution, task) if failed else None
    lines = read_log(evolution["id"])
    return masked({
        **evolution,
        "tasks": tasks,
        "failure": failure,
        "log_excerpt": log_excerpt(lines, failure["cycle"], failure["phase"]) if failure else log_excerpt(lines),
        "similar_failures": similar_failures(store, failure, evolution["id"]) if failure else None,
        "next_steps": next_steps(failure, evolution, task) if failure else [],
        "attempt_log": refusals.attempt_log(paths.evolution_dir(evolution["id"])),
    })


def _attempt_lines(attempt: dict) -> list[str]:
    """One attempt of attempts.json as text; with candidates (DESIGN §5), one line each and which was chosen."""
    lines = [f"  cycle {attempt['cycle']} attempt {attempt['attempt']}: {attempt['outcome']}"
             + (f": {_short(attempt['error'], 110)}" if attempt.get("error") and not attempt.get("candidates") else "")]
    for candidate in [c for c in attempt.get("candidates") or [] if isinstance(c, dict)]:
        gain = candidate.get("gain")
        detail = candidate.get("error") or (f"gain {gain:+.4f}" if isinstance(gain, (int, float)) else "")
        lines.append(f"    candidate {candidate.get('candidate')} ({candidate.get('agent')}): "
                     f"{candidate.get('outcome')}" + (f": {_short(detail, 100)}" if detail else ""))
    if attempt.get("chosen"):
        lines.append(f"    chosen: candidate {attempt['chosen']}, {_short(attempt.get('why') or '', 110)}")
    return lines


def incident(store: Store, task_id: str) -> dict:
    """Everything the Markdown report needs about one task."""
    task = _get_task(store, task_id)
    evolution = _evolution_of(store, task)
    failure = failure_of(evolution, task)
    return masked({
        "task": task, "evolution": evolution, "failure": failure, "artifact": artifact(task),
        "tasks": store.list_tasks(evolution_id=task["evolution_id"]),
        "log_excerpt": log_excerpt(read_log(task["evolution_id"]), task.get("cycle"), task.get("phase")),
        "similar_failures": similar_failures(store, failure, task["evolution_id"]),
        "next_steps": next_steps(failure, evolution, task),
    })


# ---- rendering -----------------------------------------------------------------------------------

def _table(rows: list[dict], columns: list[tuple[str, str]], fmt: str = "simple") -> str:
    from tabulate import tabulate

    body = [["" if row.get(key) is None else row.get(key) for key, _ in columns] for row in rows]
    return tabulate(body, headers=[header for _, header in columns], tablefmt=fmt)


def _short(text: str | None, width: int = 90) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def tokens_text(task: dict) -> str:
    """A task's tokens as 'in/out' with the cached share of the input: '27,100/850 (24,000 cached)'; '-' for none."""
    if task.get("tokens_in") is None and task.get("tokens_out") is None:
        return "-"
    text = f"{task.get('tokens_in') or 0:,}/{task.get('tokens_out') or 0:,}"
    return text + (f" ({task['tokens_cached']:,} cached)" if task.get("tokens_cached") else "")


def _task_rows(tasks: list[dict]) -> list[dict]:
    return [{**t, "duration": humanize.duration(t.get("duration_s")), "error_short": _short(t.get("error"), 70),
             "tokens": tokens_text(t), "cost": f"${t.get('cost_usd') or 0:.4f}"} for t in tasks]


_TASK_COLUMNS = [("id", "TASK"), ("cycle", "CYCLE"), ("phase", "PHASE"), ("agent", "AGENT"), ("status", "STATUS"),
                 ("duration", "DURATION"), ("tokens", "TOKENS IN/OUT"), ("cost", "COST"), ("error_short", "ERROR")]
_SIMILAR_COLUMNS = [("started", "STARTED"), ("evolution_id", "EVOLUTION"), ("task_id", "TASK"),
                    ("error_short", "ERROR")]


def _similar_rows(similar: dict) -> list[dict]:
    return [{**s, "started": timeparse.local(s.get("started_at")), "error_short": _short(s.get("error"), 70)}
            for s in similar["recent"]]


def _similar_line(failure: dict, similar: dict) -> str:
    where = f"phase {failure['phase']}, " if failure.get("task_id") and failure.get("phase") else ""
    kind = "failed tasks" if failure.get("task_id") and failure.get("agent") else "evolutions that ended badly"
    newest = " (the newest)" if similar["looked_at"] >= SIMILAR_WINDOW else ""
    return (f"{similar['count']} similar ({where}class {failure['error_class']}) among {similar['looked_at']}"
            f"{newest} {kind} in the last {similar['days']} days")


def _json_block(value, limit: int = 60) -> list[str]:
    lines = json.dumps(value, indent=2, default=str).splitlines()
    if len(lines) > limit:
        lines = [*lines[:limit], f"... ({len(lines) - limit} more lines; --json shows all)"]
    return lines


def render_task(details: dict) -> str:
    """show_failure's text: the task, its error, input/output, stderr tail, log lines, next steps."""
    evolution, art = details["evolution"], details["artifact"]
    out = [
        f"Task {details['id']}: {details['status']}",
        f"  evolution  {evolution['id']} ({evolution.get('status')}), target {evolution.get('target') or '?'}",
        f"  phase      cycle {details.get('cycle')} {details.get('phase')}, agent {details.get('agent')}, "
        f"attempts {details.get('attempts') or 0}",
        f"  started    {timeparse.local(details.get('started_at'))}, took "
        f"{humanize.duration(details.get('duration_s')) or '(not finished)'}, cost ${details.get('cost_usd') or 0:.4f}",
        f"  tokens     {tokens_text(details)} (input/output)",
        f"  trace      {details.get('trace_id') or '-'}",
        "",
        f"Error ({details['error_class'] or 'none'}):",
        f"  {details.get('error') or 'no error recorded'}",
    ]
    if art.get("missing"):
        out += ["", f"Artifact {art['path']}: {art['missing']}"]
    else:
        out += ["", f"Agent input ({art['path']}):", *("  " + x for x in _json_block(art.get("input")))]
        out += ["", "Agent output:", *("  " + x for x in _json_block(art.get("output")))]
        tail = art.get("stderr_tail") or []
        out += ["", f"Stderr tail ({len(tail)} lines):" if tail else "Stderr tail: (empty)", *("  " + x for x in tail)]
    out += ["", "Log around the task:", *("  " + x for x in details["log_excerpt"] or ["(no log lines)"])]
    if details["next_steps"]:
        out += ["", "What to do next:", *(f"  {n}. {s}" for n, s in enumerate(details["next_steps"], 1))]
    return "\n".join(out)


def render_analysis(report: dict) -> str:
    """analyze_failure's text: failure, tasks, log lines, similar failures, next steps."""

    failure = report["failure"]
    headline = f"Evolution {report['id']}: {report['status']}"
    out = [
        headline,
        f"  target   {report.get('target')}  focus {report.get('focus')}  cycles "
        f"{report.get('current_cycle') or 0}/{report.get('cycles') or '?'}",
        f"  started  {timeparse.local(report.get('started_at'))}  elapsed {history.elapsed(report)}  "
        f"cost ${report.get('cost_usd') or 0:.2f}" + (f"  PR {report['pr_url']}" if report.get("pr_url") else ""),
        "",
    ]
    if failure:
        out += [
            "Failure:",
            f"  phase    {failure['phase'] or '?'}" + (f" (cycle {failure['cycle']})" if failure.get("cycle") else ""),
            f"  task     {failure['task_id'] or '-'}"
            + (f" (agent {failure['agent']})" if failure.get("agent") else ""),
            f"  class    {failure['error_class'] or '-'}",
            f"  error    {failure['error'] or 'no error recorded'}",
            "",
        ]
    elif report["status"] in ACTIVE:
        out += [f"No failure so far: the evolution is {report['status']} "
                f"(cycle {report.get('current_cycle') or 0}, phase {report.get('current_phase') or '-'}).", ""]
    elif report["status"] == "unchanged":
        out += ["No failure: the evolution ended unchanged (no cycle changed the code; nothing to commit).", ""]
    else:
        out += ["No failure: the evolution succeeded.", ""]
    out += ["Tasks:", _table(_task_rows(report["tasks"]), _TASK_COLUMNS) if report["tasks"] else "  (none)", ""]
    if report.get("attempt_log"):
        out += [f"Attempts: {report.get('attempts') or len(report['attempt_log'])} "
                f"(at most {report.get('max_attempts') or '?'} per cycle)",
                *(line for a in report["attempt_log"] for line in _attempt_lines(a)), ""]
    out += ["Log around the failure:" if failure else "End of the log:",
            *("  " + line for line in report["log_excerpt"] or ["(no log lines)"])]
    if failure:
        similar = report["similar_failures"]
        out += ["", _similar_line(failure, similar) + (":" if similar["recent"] else ".")]
        if similar["recent"]:
            out.append(_table(_similar_rows(similar), _SIMILAR_COLUMNS))
    if report["next_steps"]:
        out += ["", "What to do next:", *(f"  {n}. {s}" for n, s in enumerate(report["next_steps"], 1))]
    return "\n".join(out)


def _fence(lines: list[str], info: str = "text") -> str:
    """A fenced code block whose fence is longer than any backtick run inside."""
    body = "\n".join(lines)
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body}\n{fence}"


def _timeline(data: dict) -> list[dict]:
    evolution, rows = data["evolution"], []
    if evolution.get("started_at"):
        rows.append({"time": evolution["started_at"], "step": "evolution started", "duration": "",
                     "status": f"target {evolution.get('target')}"})
    for task in data["tasks"]:
        marker = " ← this task" if task["id"] == data["task"]["id"] else ""
        klass = f" ({error_class(task.get('error'))})" if task.get("error") else ""
        rows.append({"time": task.get("started_at"), "step": f"cycle {task.get('cycle')} {task.get('phase')} "
                     f"({task.get('agent')}){marker}", "duration": humanize.duration(task.get("duration_s")),
                     "status": f"{task.get('status')}{klass}"})
    if evolution.get("finished_at"):
        rows.append({"time": evolution["finished_at"], "step": f"evolution {evolution.get('status')}",
                     "duration": "", "status": _short(evolution.get("error"), 80)})
    for row in rows:
        row["time"] = timeparse.local(row["time"])
    return rows


def render_markdown(data: dict) -> str:
    """The incident report: summary, timeline, error, log excerpt, similar failures, next steps."""
    task, evolution, failure, art = data["task"], data["evolution"], data["failure"], data["artifact"]
    summary = [
        ("Evolution", f"`{evolution['id']}` ({evolution.get('status')})"),
        ("Target", f"`{evolution.get('target') or '?'}`, focus {evolution.get('focus') or '?'}"),
        ("Task", f"`{task['id']}` ({task.get('status')})"),
        ("Phase", f"cycle {task.get('cycle')}, {task.get('phase')}, agent `{task.get('agent')}`"),
        ("Error class", f"`{failure['error_class'] or 'none'}`"),
        ("Started", timeparse.local(task.get("started_at"))),
        ("Duration", humanize.duration(task.get("duration_s")) or "not finished"),
        ("Cost", f"${task.get('cost_usd') or 0:.2f} (evolution ${evolution.get('cost_usd') or 0:.2f})"),
        ("Trace", f"`{task.get('trace_id')}`" if task.get("trace_id") else "-"),
    ]
    if evolution.get("pr_url"):
        summary.append(("PR", evolution["pr_url"]))
    title = f"{task.get('phase')} {task.get('status')}" if failure["error"] else f"task {task.get('status')}"
    parts = [
        f"# Incident: {title} in evolution {evolution['id']}",
        f"_Generated {timeparse.local(timeparse.iso())} on {socket.gethostname()} by generate_failure_report.py._",
        "## Summary",
        _table([{"k": f"**{k}**", "v": v} for k, v in summary], [("k", "Field"), ("v", "Value")], "github"),
        "## Timeline",
        _table(_timeline(data), [("time", "Time"), ("step", "Step"), ("duration", "Duration"), ("status", "Result")],
               "github"),
        "## Error",
        _fence([failure["error"] or "no error recorded"]),
    ]
    if evolution.get("error") and evolution.get("error") != failure["error"]:
        parts += ["The evolution ended with:", _fence([evolution["error"]])]
    if art.get("stderr_tail"):
        parts += ["Agent stderr (last lines):", _fence(art["stderr_tail"])]
    if art.get("missing"):
        parts.append(f"Artifact `{art['path']}`: {art['missing']}.")
    parts += ["## Log excerpt", f"From `{paths.evolution_dir(evolution['id']) / 'evolution.log'}`:",
              _fence(data["log_excerpt"] or ["(no log lines)"])]
    similar = data["similar_failures"]
    parts += ["## Similar failures", _similar_line(failure, similar) + "." if failure["error_class"]
              else "No error, so nothing to compare."]
    if similar["recent"]:
        parts.append(_table(_similar_rows(similar), _SIMILAR_COLUMNS, "github"))
    parts.append("## Next steps")
    steps = "\n".join(f"{n}. {step}" for n, step in enumerate(data["next_steps"], 1))
    parts.append(steps or "None: the task succeeded.")
    return mask_secrets("\n\n".join(parts) + "\n")
