"""The evolution cycle (DESIGN §5): research -> plan -> implement -> evaluate -> gate -> PR.

Agents do the work; the runner judges it. Every agent gets the §5 input and its reply is checked
(lib/evolution/contract.py) before anything reads it; implement's change is taken into the worktree
under the patch rules (patching.py); the runner measures, gates and tests it (judge.py); the
evaluate agent may veto, never pass. The runner is its own process and process group (started by
lib.evolution.start_detached); between phases it honours a stop request and the cost limits, and a
heartbeat thread proves it is alive. Every agent call is a task with a span, an artifact and log lines.
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

from lib import agents, config, fsutil, log, paths
from lib.adapters import gitops
from lib.agents import AgentError
from lib.errors import ToolError
from lib.evolution import contract, judge, patching, publish
from lib.evolution.eventlog import EventLog
from lib.quality import measure, patterns
from lib.store import ACTIVE, Store, new_id, open_store
from lib.timeparse import day_bounds, iso, utcnow

PHASES = ("research", "plan", "implement", "evaluate")
NEXT_STEP = {"research": "plan", "plan": "implement", "implement": "evaluate", "evaluate": "gate"}


class CycleEnded(Exception):
    """Ends the evolution early with a final status and a reason."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def stamp() -> str:
    """Span times: UTC ISO with milliseconds."""
    return utcnow().isoformat(timespec="milliseconds")


class Runner:
    def __init__(self, store: Store, evolution_id: str, target: Path | None = None):
        """target: where the target is on this machine when not at the record's path (a fresh clone in a
        stepfunctions task, lib.evolution.executors.checkout)."""
        self.store = store
        self.id = evolution_id
        self.record = store.get_evolution(evolution_id)
        self.settings = config.settings()
        self.limits = config.cost_limits()
        self.log = EventLog(evolution_id, self.record["cycles"] or 1)
        self.trace_id = secrets.token_hex(16)
        self.root_span = secrets.token_hex(8)
        self.target = target or Path(self.record["target"])
        self.repo = gitops.repo_root(self.target)
        self.target_rel = self.target.relative_to(self.repo).as_posix()
        self.worktree = paths.worktrees_dir() / evolution_id
        self.branch = gitops.branch_name(self.record["focus"], evolution_id, utcnow())
        self.stop_requested = threading.Event()
        self.cost = 0.0
        self.cycle_cost = 0.0
        self.files_changed: set[str] = set()
        self._beating = threading.Event()
        self.base_sha = ""
        self.remote_url: str | None = None
        self.patterns: list[dict] = []

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
        reason = None
        self.log.info(f"evolution started: target {self.target}, focus {self.record['focus']}, "
                      f"{self.record['cycles']} cycle(s){', dry run' if self.record['dry_run'] else ''}")
        try:
            self._prepare_worktree()
            outcomes = [self._run_cycle(cycle) for cycle in range(1, (self.record["cycles"] or 1) + 1)]
            status = "succeeded" if "succeeded" in outcomes else "unchanged"
        except CycleEnded as ended:
            status, reason = ended.status, ended.reason
        except ToolError as failure:
            status, reason = "failed", f"runner: {failure}"
        except Exception as crash:  # recorded, so that the store never shows a dead 'running' evolution
            status, reason = "failed", f"runner: {type(crash).__name__}: {crash}"
        finally:
            self._beating.set()
            self._finish_worktree()
        reason = log.mask_secrets(reason) if reason else reason
        self._span(self.root_span, None, f"evolution {self.id}", started,
                   "error" if status not in ("succeeded", "unchanged") else "ok",
                   {"evolution_id": self.id, "status": status})
        fields = {"status": status, "finished_at": iso(), "error": reason, "current_phase": None,
                  "cost_usd": round(self.cost, 6), "files_changed": len(self.files_changed)}
        if self.store.update_evolution(self.id, fields, expect_status=ACTIVE):
            (self.log.info if status in ("succeeded", "unchanged") else self.log.error)(
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
    def _run_cycle(self, cycle: int) -> str:
        """One cycle; returns succeeded or unchanged, raises CycleEnded for every other end."""
        self.log.cycle, self.cycle_cost = cycle, 0.0
        self.store.update_evolution(self.id, {"current_cycle": cycle})
        cycle_span, started = secrets.token_hex(8), stamp()
        try:
            outcome = self._cycle(cycle, cycle_span)
        except CycleEnded:
            try:  # a refused change must not reach the next cycle or the branch
                gitops.discard_changes(self.worktree)
            except ToolError as failure:
                self.log.warning(f"could not reset the worktree: {failure}")
            self._span(cycle_span, self.root_span, f"cycle {cycle}", started, "error", {"cycle": cycle})
            raise
        self._span(cycle_span, self.root_span, f"cycle {cycle}", started, "ok", {"cycle": cycle, "outcome": outcome})
        return outcome

    def _cycle(self, cycle: int, span: str) -> str:
        before = self._timed(span, "measure before", lambda: judge.measure_target(self.worktree, self.target_rel))
        if cycle == 1:
            self.store.update_evolution(self.id, {"metrics_before": before})
        context: dict = {}
        target_files = [p.relative_to(self.worktree).as_posix()
                        for p in measure.python_files(self.worktree / self.target_rel)]
        for phase in ("research", "plan"):
            context[phase] = self._phase(cycle, phase, span, target_files, before, context)
        implement_agent = agents.for_phase("implement")
        change_box: list[patching.Change] = []

        def take_change(output: dict) -> None:
            change_box.append(patching.take(self.worktree, self.target_rel, self.store, output))

        context["implement"] = self._phase(cycle, "implement", span, context["plan"]["files"], before, context,
                                           accept=take_change)
        change = change_box[0]
        if change.empty:
            self.log.info(f"{implement_agent['name']} changed nothing: the cycle ends unchanged"
                          + (f" ({context['implement']['summary']})" if context["implement"].get("summary") else ""))
            return "unchanged"
        self.log.info(f"change: {len(change.files)} file(s): {', '.join(change.files[:5])}")
        verdict = self._timed(span, "judge", lambda: judge.judge(self.worktree, self.target_rel, before,
                                                                          change.files))
        self.store.update_evolution(self.id, {"metrics_after": verdict.metrics_after, "tests": verdict.tests["status"]})
        context["runner"] = {"files_changed": change.files, "metrics_after": verdict.metrics_after,
                             "gates": verdict.gates, "tests": verdict.tests}
        evaluation = self._phase(cycle, "evaluate", span, change.files, before, context)
        self._gate(cycle, span, verdict, evaluation)
        self.files_changed.update(change.files)
        sha = self._timed(span, "commit", lambda: publish.commit(self, cycle, before, verdict, change))
        pr = self._timed(span, "pull request", lambda: publish.open_pull_request(self, cycle, before, verdict, change,
                                                                                 sha))
        if pr:
            self.store.update_evolution(self.id, {"pr_number": pr["number"], "pr_url": pr["html_url"]})
        return "succeeded"

    def _gate(self, cycle: int, span: str, verdict: judge.Verdict, evaluation: dict) -> None:
        """The runner's verdict; the evaluate agent can only add a veto."""
        started = stamp()
        self.log.phase = "gate"
        problems = list(verdict.problems)
        if evaluation["verdict"] == "fail":
            agent = agents.for_phase("evaluate")["name"]
            problems.append(f"vetoed: {agent}: {evaluation.get('notes') or 'verdict fail'}")
        self._span(secrets.token_hex(8), span, "gate", started, "error" if problems else "ok",
                   {"cycle": cycle, "tests": verdict.tests["status"], "problems": problems})
        if problems:
            self.log.error(f"cycle {cycle} refused: {'; '.join(problems)}")
            raise CycleEnded("failed", "; ".join(problems))
        self.log.info(f"quality gates passed; tests {verdict.tests['status']}")

    def _boundary(self, phase: str) -> None:
        """Between phases: honour a stop request, then the cost limits."""
        self._honour_stop(f"before {phase}")
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

    def _honour_stop(self, where: str) -> None:
        if self.stop_requested.is_set() or self.store.get_evolution(self.id)["status"] == "stopping":
            raise CycleEnded("stopped", f"stopped: graceful stop requested {where}")

    # ---- one agent call -------------------------------------------------------------------
    def _input(self, agent: dict, task_id: str, cycle: int, phase: str, span_id: str, files: list[str],
               before: dict, context: dict) -> dict:
        """The §5 input document."""
        budget = int(self.settings["evolution"]["agent_context_bytes"])
        return {
            "evolution_id": self.id, "task_id": task_id, "cycle": cycle, "phase": phase,
            "target": self.target_rel,
            "worktree": str(self.worktree) if agent["runtime"] in contract.ON_THIS_MACHINE else None,
            "focus": self.record["focus"], "dry_run": bool(self.record["dry_run"]),
            "repo": {"remote_url": self.remote_url, "base_sha": self.base_sha, "branch": self.branch},
            "files": contract.file_entries(self.worktree, files, budget),
            "patterns": self.patterns, "gates": config.gates(), "metrics": before, "context": context,
            "traceparent": f"00-{self.trace_id}-{span_id}-01",
        }

    def _phase(self, cycle: int, phase: str, parent_span: str, files: list[str], before: dict, context: dict,
               accept=None) -> dict:
        """Run the phase's agent as one task; its checked output, or CycleEnded with the task's error."""
        self._boundary(phase)
        agent = agents.for_phase(phase)
        task_id, span_id = new_id("task"), secrets.token_hex(8)
        self.log.phase = phase
        started, clock = stamp(), time.monotonic()
        self.store.update_evolution(self.id, {"current_phase": phase})
        self.store.create_task({"id": task_id, "evolution_id": self.id, "cycle": cycle, "phase": phase,
                                "agent": agent["name"], "status": "running", "attempts": 1, "started_at": iso(),
                                "trace_id": self.trace_id})
        payload = self._input(agent, task_id, cycle, phase, span_id, files, before, context)
        self.log.info(f"{agent['name']} ({agent['runtime']}) started: task {task_id}")
        reply, raw, error, stderr_tail, refused = None, None, None, [], {}
        try:
            raw = agents.runtime(agent).invoke(payload, float(agent.get("timeout_seconds") or config.phase_timeout()))
            stderr_tail = raw.pop("stderr_tail", []) if isinstance(raw, dict) else []
            if isinstance(raw, dict) and raw.get("status") != "ok":
                why = raw.get("error") or "status error without a message"
                raise AgentError(f"agent-error: {agent['name']}: {why}")
            reply = contract.read_reply(phase, agent, raw, self.target_rel)
            if accept:
                accept(reply.output)
        except AgentError as failure:
            error, stderr_tail = failure.message, failure.stderr_tail or stderr_tail
            refused = {"cost_usd": failure.cost_usd, "tokens": failure.tokens}  # a model answer the runtime refused
        except ToolError as failure:
            error = f"agent-error: {agent['name']}: {failure}"
        error = log.mask_secrets(" ".join(error.split())) if error else None
        spent = (reply.cost_usd, reply.tokens_in, reply.tokens_out) if reply else contract.paid(
            raw if isinstance(raw, dict) else refused)
        self._record_task(task_id, phase, payload, raw, reply, error, stderr_tail, spent, time.monotonic() - clock)
        self._span(span_id, parent_span, f"{phase} {agent['name']}", started, "error" if error else "ok",
                   {"task_id": task_id, "evolution_id": self.id, "agent": agent["name"], "phase": phase,
                    "cycle": cycle})
        if error:
            self.log.error(f"{agent['name']} failed after {time.monotonic() - clock:.1f}s: {error}")
            self._honour_stop(f"before {NEXT_STEP[phase]}")  # a stop asked during a failed phase still wins
            raise CycleEnded("failed", f"{phase} failed (task {task_id}): {error}")
        self.log.info(f"{agent['name']} done in {time.monotonic() - clock:.1f}s: {_summary(phase, reply.output)}")
        return reply.output

    def _record_task(self, task_id: str, phase: str, payload: dict, raw, reply, error: str | None,
                     stderr_tail: list[str], spent: tuple, seconds: float) -> None:
        """The artifact (the input without file contents, the raw output), the task row and the costs
        (spent: cost_usd, tokens in, tokens out; a failed call counts what it was paid)."""
        cost, tokens_in, tokens_out = spent
        self.cost += cost
        self.cycle_cost += cost
        stored_input = {**payload, "files": [{"path": f["path"], "bytes": len(f["content"] or "")}
                                             for f in payload["files"]]}
        output = raw.get("output") if isinstance(raw, dict) else raw
        fsutil.atomic_write(paths.evolution_dir(self.id) / "tasks" / f"{task_id}.json", json.dumps(
            {"input": stored_input, "output": log.masked(output), "error": error,
             "stderr_tail": [log.mask_secrets(line) for line in stderr_tail]}, default=str, indent=1))
        self.store.update_task(task_id, {
            "status": "failed" if error else "succeeded", "finished_at": iso(), "duration_s": round(seconds, 3),
            "cost_usd": cost, "error": error, "output_summary": error[:200] if error else _summary(phase, reply.output),
            "tokens_in": tokens_in, "tokens_out": tokens_out})
        self.store.update_evolution(self.id, {"cost_usd": round(self.cost, 6)})

    def _timed(self, parent: str, name: str, work):
        """Runner work (measurement, judging, publishing) as a span of its own in the trace."""
        started = stamp()
        try:
            result = work()
        except Exception:
            self._span(secrets.token_hex(8), parent, name, started, "error", {})
            raise
        self._span(secrets.token_hex(8), parent, name, started, "ok", {})
        return result

    # ---- worktree ---------------------------------------------------------------------------
    def _prepare_worktree(self) -> None:
        """The implement phase works here, never in the operator's checkout (DESIGN §8)."""
        self.base_sha = gitops.git(self.repo, "rev-parse", "HEAD")
        gitops.add_worktree(self.repo, self.worktree, self.branch, self.base_sha)
        (paths.tmp_dir() / self.id).mkdir(parents=True, exist_ok=True)
        self.remote_url = contract.public_url(gitops.remote_url(self.repo))
        self.patterns = patterns.for_target(self.store, self.target_rel)
        self.log.info(f"worktree {self.worktree} on branch {self.branch}")

    def _finish_worktree(self) -> None:
        """Drop the worktree; keep the branch only when it carries a pushed-or-kept commit of this evolution."""
        try:
            ahead = self.worktree.exists() and self.base_sha and not self.record["dry_run"] and gitops.git(
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


def _summary(phase: str, output: dict) -> str:
    """One short line per task for tables, from checked keys only; the artifact keeps the whole output."""
    if phase == "research":
        return log.mask_secrets(output["summary"])[:200]
    if phase == "plan":
        return f"{len(output['files'])} file(s) planned"
    if phase == "implement":
        if output.get("patch") is not None:
            return f"patch of {len(output['patch'])} bytes" if output["patch"].strip() else "no change"
        return f"{len(output['changed_files'])} file(s) edited in place"
    notes = log.mask_secrets(output.get("notes") or "")[:150]
    return f"verdict {output['verdict']}" + (f": {notes}" if notes else "")
