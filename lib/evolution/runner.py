"""The evolution cycle (DESIGN §5): research -> plan -> implement -> evaluate -> gate -> PR.

The runner is its own process and process group (started by lib.evolution.start). Between
phases it checks for a stop request and the cost limits; a heartbeat thread proves it is
alive; every agent call is a task with a span, an artifact and log lines.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import threading
import time
from pathlib import Path

from lib import agents, config, fsutil, paths
from lib.adapters import gitops
from lib.agents import AgentError
from lib.errors import ToolError
from lib.evolution.eventlog import EventLog
from lib.evolution.publish import publish_cycle
from lib.store import ACTIVE, Store, new_id, open_store
from lib.timeparse import day_bounds, iso, utcnow

PHASES = ("research", "plan", "implement", "evaluate")
DEFAULT_PHASE_TIMEOUT = 3600.0


class CycleEnded(Exception):
    """Ends the evolution early with a final status and a reason."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def phase_timeout() -> float:
    value = os.environ.get("TIMEOUT_SECONDS", "").strip()
    try:
        return float(value) if value else DEFAULT_PHASE_TIMEOUT
    except ValueError:
        return DEFAULT_PHASE_TIMEOUT


def stamp() -> str:
    """Span times: UTC ISO with milliseconds."""
    return utcnow().isoformat(timespec="milliseconds")


class Runner:
    def __init__(self, store: Store, evolution_id: str):
        self.store = store
        self.id = evolution_id
        self.record = store.get_evolution(evolution_id)
        self.settings = config.settings()
        self.limits = config.cost_limits()
        self.log = EventLog(evolution_id, self.record["cycles"] or 1)
        self.trace_id = secrets.token_hex(16)
        self.root_span = secrets.token_hex(8)
        self.target = Path(self.record["target"])
        self.repo = gitops.repo_root(self.target)
        self.worktree = paths.worktrees_dir() / evolution_id
        self.branch = gitops.branch_name(self.record["focus"], evolution_id, utcnow())
        self.stop_requested = threading.Event()
        self.cost = 0.0
        self.cycle_cost = 0.0
        self.context: dict = {}
        self._beating = threading.Event()
        self.base_sha = ""

    # ---- lifecycle ----------------------------------------------------------------------
    def run(self) -> str:
        claimed = self.store.update_evolution(
            self.id, {"status": "running", "pid": os.getpid(), "host": socket.gethostname(),
                      "heartbeat_at": iso(), "started_at": iso()}, expect_status=("pending",))
        if not claimed:
            self.log.error("not started: the evolution is no longer pending")
            return self.store.get_evolution(self.id)["status"]
        heartbeat = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)
        heartbeat.start()
        started = stamp()
        status, reason = "succeeded", None
        self.log.info(f"evolution started: target {self.target}, focus {self.record['focus']}, "
                      f"{self.record['cycles']} cycle(s){', dry run' if self.record['dry_run'] else ''}")
        try:
            self._prepare_worktree()
            for cycle in range(1, (self.record["cycles"] or 1) + 1):
                self._run_cycle(cycle)
        except CycleEnded as ended:
            status, reason = ended.status, ended.reason
        except ToolError as failure:
            status, reason = "failed", f"runner: {failure}"
        except Exception as crash:  # recorded, so that the store never shows a dead 'running' evolution
            status, reason = "failed", f"runner: {type(crash).__name__}: {crash}"
        finally:
            self._beating.set()
            self._finish_worktree(status)
        self._span(self.root_span, None, f"evolution {self.id}", started, "ok" if status == "succeeded" else "error",
                   {"evolution_id": self.id, "status": status})
        fields = {"status": status, "finished_at": iso(), "error": reason, "current_phase": None,
                  "cost_usd": round(self.cost, 6)}
        if self.store.update_evolution(self.id, fields, expect_status=ACTIVE):
            (self.log.info if status == "succeeded" else self.log.error)(
                f"evolution {status}" + (f": {reason}" if reason else ""))
        return status

    def _heartbeat(self) -> None:
        """Beat on a store connection of its own: the main thread's is busy with the phases."""
        interval = float(self.settings["evolution"]["heartbeat_seconds"])
        store = open_store(create=True)
        try:
            while not self._beating.wait(interval):
                store.update_evolution(self.id, {"heartbeat_at": iso()})
        finally:
            store.close()

    def request_stop(self, *_signal) -> None:
        self.stop_requested.set()

    # ---- the cycle ------------------------------------------------------------------------
    def _run_cycle(self, cycle: int) -> None:
        self.log.cycle, self.cycle_cost = cycle, 0.0
        self.store.update_evolution(self.id, {"current_cycle": cycle})
        cycle_span, started = secrets.token_hex(8), stamp()
        target_in_worktree = self.worktree / self.target.relative_to(self.repo)
        self.context = {"worktree": str(self.worktree), "repo": str(self.repo), "branch": self.branch}
        try:
            for phase in PHASES:
                self._boundary(phase)
                self.context[phase] = self._run_phase(cycle, phase, cycle_span, target_in_worktree)
                if phase == "research" and cycle == 1:
                    self.store.update_evolution(self.id, {"metrics_before": self.context[phase]["metrics"]})
            self._gate(cycle)
        except CycleEnded:
            self._span(cycle_span, self.root_span, f"cycle {cycle}", started, "error", {"cycle": cycle})
            raise
        self._span(cycle_span, self.root_span, f"cycle {cycle}", started, "ok", {"cycle": cycle})

    def _boundary(self, phase: str) -> None:
        """Between phases: honour a stop request, then the cost limits."""
        current = self.store.get_evolution(self.id)
        if self.stop_requested.is_set() or current["status"] == "stopping":
            raise CycleEnded("stopped", f"stopped: graceful stop requested before {phase}")
        per_cycle = self.limits.get("per_cycle_usd")
        if per_cycle is not None and self.cycle_cost >= per_cycle:
            raise CycleEnded("failed", f"cost-limit: cycle cost ${self.cycle_cost:.2f} reached the per-cycle "
                                       f"limit ${per_cycle:.2f}")
        daily = self.limits.get("daily_usd")
        if daily is not None:
            start, end = day_bounds(utcnow().astimezone().date())
            spent = sum(e["cost_usd"] or 0 for e in self.store.list_evolutions(since=iso(start), until=iso(end))
                        if e["id"] != self.id) + self.cost
            if spent >= daily:
                raise CycleEnded("failed", f"cost-limit: ${spent:.2f} spent today reached the daily limit "
                                           f"${daily:.2f}")

    def _run_phase(self, cycle: int, phase: str, parent_span: str, target: Path) -> dict:
        agent = agents.for_phase(phase)
        task_id = new_id("task")
        span_id = secrets.token_hex(8)
        self.log.phase = phase
        started, clock = stamp(), time.monotonic()
        self.store.update_evolution(self.id, {"current_phase": phase})
        self.store.create_task({"id": task_id, "evolution_id": self.id, "cycle": cycle, "phase": phase,
                                "agent": agent["name"], "status": "running", "attempts": 1, "started_at": iso(),
                                "trace_id": self.trace_id})
        payload = {"evolution_id": self.id, "task_id": task_id, "cycle": cycle, "phase": phase,
                   "target": str(target), "focus": self.record["focus"], "dry_run": bool(self.record["dry_run"]),
                   "context": self.context}
        self.log.info(f"{agent['name']} ({agent['runtime']}) started: task {task_id}")
        result, error, stderr_tail = None, None, []
        try:
            result = agents.runtime(agent).invoke(payload, float(agent.get("timeout_seconds") or phase_timeout()))
            stderr_tail = result.pop("stderr_tail", [])
            if result.get("status") != "ok":
                error = f"agent-error: {agent['name']}: {result.get('error') or 'status error without a message'}"
        except AgentError as failure:
            error, stderr_tail = failure.message, failure.stderr_tail
        except ToolError as failure:
            error = f"agent-error: {agent['name']}: {failure}"
        duration = round(time.monotonic() - clock, 3)
        cost = float((result or {}).get("cost_usd") or 0.0)
        self.cost += cost
        self.cycle_cost += cost
        output = (result or {}).get("output")
        fsutil.atomic_write(paths.evolution_dir(self.id) / "tasks" / f"{task_id}.json", json.dumps(
            {"input": payload, "output": output, "error": error, "stderr_tail": stderr_tail}, default=str, indent=1))
        self.store.update_task(task_id, {"status": "failed" if error else "succeeded", "finished_at": iso(),
                                         "duration_s": duration, "cost_usd": cost, "error": error,
                                         "output_summary": _summary(phase, output, error)})
        self.store.update_evolution(self.id, {"cost_usd": round(self.cost, 6)})
        self._span(span_id, parent_span, f"{phase} {agent['name']}", started, "error" if error else "ok",
                   {"task_id": task_id, "evolution_id": self.id, "agent": agent["name"], "phase": phase,
                    "cycle": cycle})
        if error:
            self.log.error(f"{agent['name']} failed after {duration:.1f}s: {error}")
            raise CycleEnded("failed", f"{phase} failed (task {task_id}): {error}")
        self.log.info(f"{agent['name']} done in {duration:.1f}s: {_summary(phase, output, None)}")
        return output if isinstance(output, dict) else {"result": output}

    def _gate(self, cycle: int) -> None:
        evaluation = self.context["evaluate"]
        after = evaluation.get("metrics")
        if after:
            self.store.update_evolution(self.id, {"metrics_after": after})
        if not evaluation.get("passed", False):
            failed = [g for g in evaluation.get("gates", []) if g.get("passed") is False]
            words = "; ".join(f"{g['metric']} {g['value']} vs {g['direction']} {g['threshold']}" for g in failed)
            tests = evaluation.get("tests", {})
            if tests.get("passed") is False:
                words = "; ".join(filter(None, [words, f"tests failed ({tests.get('summary')})"]))
            raise CycleEnded("failed", f"gates-failed: cycle {cycle}: {words or 'evaluation did not pass'}")
        self.log.phase = "gate"
        self.log.info("quality gates passed")
        pr = publish_cycle(self, cycle)
        if pr:
            self.store.update_evolution(self.id, {"pr_number": pr["number"], "pr_url": pr["html_url"]})

    # ---- worktree ---------------------------------------------------------------------------
    def _prepare_worktree(self) -> None:
        """The implement phase works here, never in the operator's checkout (DESIGN §8)."""
        self.base_sha = gitops.git(self.repo, "rev-parse", "HEAD")
        gitops.add_worktree(self.repo, self.worktree, self.branch, self.base_sha)
        (paths.tmp_dir() / self.id).mkdir(parents=True, exist_ok=True)
        self.log.info(f"worktree {self.worktree} on branch {self.branch}")

    def _finish_worktree(self, status: str) -> None:
        """Drop the worktree; keep the branch only when it carries a commit of this evolution."""
        try:
            ahead = self.worktree.exists() and self.base_sha and gitops.git(
                self.worktree, "rev-list", "--count", f"{self.base_sha}..HEAD") not in ("", "0")
            gitops.remove_worktree(self.repo, self.worktree)
            if not ahead and self.branch in gitops.auto_branches(self.repo):
                gitops.delete_branch(self.repo, self.branch)
            tmp = paths.tmp_dir() / self.id
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        except ToolError as failure:
            self.log.warning(f"worktree clean-up incomplete ({failure}); run cleanup.py --evolution {self.id}")

    # ---- tracing ------------------------------------------------------------------------------
    def _span(self, span_id: str, parent: str | None, name: str, start: str, status: str, attributes: dict) -> None:
        self.store.add_span({"trace_id": self.trace_id, "span_id": span_id, "parent_id": parent, "name": name,
                             "start": start, "end": stamp(), "status": status, "attributes": attributes})


def _summary(phase: str, output, error: str | None) -> str:
    """One short line per task for tables; the artifact keeps the whole output."""
    if error:
        return error[:200]
    if not isinstance(output, dict):
        return str(output)[:200]
    if phase in ("research", "evaluate") and isinstance(output.get("metrics"), dict):
        m = output["metrics"]
        text = (f"{m.get('files')} files, docstring {m.get('docstring')}%, cc {m.get('complexity')}, "
                f"mi {m.get('maintainability')}, lint {m.get('lint')}, security {m.get('security')}")
        if phase == "evaluate":
            text += ", gates " + ("passed" if output.get("passed") else "failed")
        return text
    if phase == "plan":
        return f"{len(output.get('files', []))} file(s), {len(output.get('skipped', []))} skipped by patterns"
    if phase == "implement":
        return f"{len(output.get('changed_files', []))} file(s) changed"
    return json.dumps(output, default=str)[:200]
