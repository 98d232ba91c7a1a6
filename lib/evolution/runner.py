"""The evolution cycle (DESIGN §5): research -> plan -> implement -> evaluate -> gate -> PR.

Agents do the work; the runner judges it. Every agent gets the §5 input and its reply is checked
(lib/evolution/contract.py) before anything reads it; implement's change is taken into the worktree
under the patch rules (patching.py); the runner measures, gates and tests it against the tests'
run on the base (judge.py, testing.py); the evaluate agent, asked only about a change the runner
passed, may veto, never pass. A refused attempt is repaired: the worktree goes back to the cycle's
start and implement is called again with the feedback, up to the evolution's max_attempts. The
runner is its own process and process group (started by lib.evolution.lifecycle.start_detached); between
phases it honours a stop request and the cost limits, and a heartbeat thread proves it is alive.
Every agent call is a task with a span, an artifact and log lines.
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
from lib.evolution import context as agent_context
from lib.evolution import contract, escapes, judge, patching, publish, testing
from lib.evolution.eventlog import EventLog
from lib.quality import measure, patterns
from lib.store import ACTIVE, Store, StoreLocked, new_id, open_store
from lib.timeparse import day_bounds, iso, utcnow

#: A task's error line is cut to this many characters.
ERROR_CHARS = 2000
#: An earlier phase's output larger than this is not copied into a later task's artifact.
STORED_CONTEXT_BYTES = 100_000
NEXT_STEP = {"research": "plan", "plan": "implement", "implement": "evaluate", "evaluate": "gate"}


#: What one feedback entry may carry of a refused attempt's patch (DESIGN §5).
FEEDBACK_PATCH_BYTES = 20000
#: Every implement attempt of the evolution with its outcome, in its folder (analyze_failure reads it).
ATTEMPTS_FILE = "attempts.json"


class CostLimit(ToolError):
    """A model call that could overshoot the evolution's budget: not made (DESIGN §5 Budget)."""


class CycleEnded(Exception):
    """Ends the evolution early with a final status and a reason."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Refused(CycleEnded):
    """A refused attempt (bad-patch, syntax-error, tests failed, tests-weakened, gates-failed, vetoed):
    while attempts remain, the cycle repairs it with another implement call (DESIGN §5)."""

    def __init__(self, reason: str, patch: str = "", tests: dict | None = None, gates: list[dict] = ()):
        super().__init__("failed", reason)
        self.patch, self.tests, self.gates = patch, tests, list(gates)

    def feedback(self, attempt: int) -> dict:
        """The feedback entry the next attempt's input carries."""
        tests = None if self.tests is None else {
            "exit_code": self.tests.get("exit_code"), "failed": self.tests.get("failed", []),
            "output_tail": log.mask_secrets(self.tests.get("output_tail", ""))}
        return {"attempt": attempt, "error": log.mask_secrets(self.reason),
                "patch": cut(self.patch, FEEDBACK_PATCH_BYTES), "tests": tests,
                "gates": [{"name": g["metric"], "before": g["before"], "after": g["value"],
                           "rule": f"{g['rule']}: {'>=' if g['direction'] == 'min' else '<='} {g['threshold']}"}
                          for g in self.gates]}


def cut(text: str, limit: int) -> str:
    """At most limit bytes of text, the cut marked."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore") + f"\n[... cut: {len(data) - limit} more bytes]\n"


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
        if self.record.get("agents_file"):  # run_evolution.py --agents FILE
            config.use_agents_file(Path(self.record["agents_file"]))
        self.settings = config.settings()
        self.budget = self.record.get("budget_usd")
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
        self.max_attempts = int(self.record.get("max_attempts") or self.settings["evolution"]["max_attempts"])
        self.attempts = 0
        self.history: list[dict] = []  # the §5 input's history: one entry per finished cycle
        self.refusal: str | None = None  # the last cycle that used up its attempts
        self.tests_view: dict | None = None  # the §5 input's tests for this cycle
        self.attempt_log: list[dict] = []

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
            if "succeeded" not in outcomes and self.refusal:  # a refused cycle let the next one run
                raise CycleEnded("failed", self.refusal)
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
        try:
            self._span(self.root_span, None, f"evolution {self.id}", started,
                       "error" if status not in ("succeeded", "unchanged") else "ok",
                       {"evolution_id": self.id, "status": status})
        except ToolError as failure:  # the trace loses its root span; the status below must still be written
            self.log.warning(f"evolution span not recorded: {failure}")
        fields = {"status": status, "finished_at": iso(), "error": reason, "current_phase": None,
                  "cost_usd": round(self.cost, 6), "files_changed": len(self.files_changed)}
        if self._record_final(fields):
            (self.log.info if status in ("succeeded", "unchanged") else self.log.error)(
                f"evolution {status}" + (f": {reason}" if reason else ""))
        return status

    def _record_final(self, fields: dict) -> bool:
        """The final status, however long another writer holds the store: a runner that exited with its
        record active would be settled as killed (--monitor, the stuck check) whatever really happened."""
        while True:
            try:
                return self.store.update_evolution(self.id, fields, expect_status=ACTIVE)
            except StoreLocked as failure:
                self.log.warning(f"final status {fields['status']} not recorded yet: {failure}; trying again")

    def _heartbeat(self) -> None:
        """Beat on a store connection of its own: the main thread's is busy with the phases."""
        interval = float(self.settings["evolution"]["heartbeat_seconds"])
        store = open_store(create=True)
        try:
            while not self._beating.wait(interval):
                try:  # a store locked past its wait costs this beat, never the thread (health would page)
                    store.update_evolution(self.id, {"heartbeat_at": iso()})
                except ToolError as missed:
                    self.log.warning(f"heartbeat not recorded: {missed}")
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
        self._span(cycle_span, self.root_span, f"cycle {cycle}", started, "error" if outcome == "refused" else "ok",
                   {"cycle": cycle, "outcome": outcome})
        return outcome

    def _cycle(self, cycle: int, span: str) -> str:
        """research and plan once, then implement -> judge -> evaluate until an attempt passes or the
        attempts are used up (DESIGN §5); returns succeeded, unchanged or refused."""
        before = self._timed(span, "measure before", lambda: judge.measure_target(self.worktree, self.target_rel))
        if cycle == 1:
            self.store.update_evolution(self.id, {"metrics_before": before})
        tests_plan = testing.plan(self.worktree, self.target_rel)  # found before any patch
        base_tests = self._timed(span, "tests on the base", lambda: self._baseline(tests_plan)) \
            if tests_plan.argv else None
        self.tests_view = testing.agent_view(tests_plan, base_tests)
        context: dict = {}
        target_files = [p.relative_to(self.worktree).as_posix()
                        for p in measure.python_files(self.worktree / self.target_rel)]
        for phase in ("research", "plan"):
            context[phase] = self._phase(cycle, phase, span, target_files, before, context)
        feedback: list[dict] = []
        for attempt in range(1, self.max_attempts + 1):
            try:
                outcome = self._attempt(cycle, attempt, span, before, context, feedback, tests_plan, base_tests)
            except Refused as refused:
                self.log.warning(f"attempt {attempt}/{self.max_attempts} refused: {refused.reason}")
                self._note_attempt(cycle, attempt, "refused", refused.reason)
                gitops.discard_changes(self.worktree)  # the next attempt starts from the cycle's start
                feedback.append(refused.feedback(attempt))
                continue
            self._note_attempt(cycle, attempt, outcome, None)
            return outcome
        last = feedback[-1]["error"]
        self.refusal = f"{self.max_attempts} attempts refused; last: {last}" if self.max_attempts > 1 else last
        self.history.append({"cycle": cycle, "outcome": "refused", "summary": self.refusal[:500], "files": []})
        self.log.error(f"cycle {cycle} refused: {self.refusal}")
        return "refused"

    def _note_attempt(self, cycle: int, attempt: int, outcome: str, error: str | None) -> None:
        """The evolution's attempts file (attempts.json beside its log), which analyze_failure shows."""
        self.attempt_log.append({"cycle": cycle, "attempt": attempt, "outcome": outcome,
                                 "error": log.mask_secrets(error) if error else None})
        fsutil.atomic_write(paths.evolution_dir(self.id) / ATTEMPTS_FILE, json.dumps(self.attempt_log, indent=1))

    def _baseline(self, tests_plan: testing.TestPlan) -> dict:
        """The tests' run on the cycle's start (cached per commit); a command that cannot start ends the
        evolution (test-env)."""
        try:
            result = testing.baseline(tests_plan, self.worktree, gitops.git(self.worktree, "rev-parse", "HEAD"),
                                      self._junit("base"))
        except testing.TestEnvError as failure:
            raise CycleEnded("failed", str(failure)) from None
        finally:
            gitops.discard_changes(self.worktree)  # what the test run left (caches, reports) is no change
        if result["exit_code"] is None:  # nothing to judge an attempt against
            raise CycleEnded("failed", str(testing.TestEnvError(
                f"the tests on the base {result['summary']}", "raise evolution.test_timeout_seconds")))
        self.log.info(f"tests on the base: {result['summary']}"
                      + (f"; {len(result['failed'])} failing there" if result["failed"] else ""))
        return result

    def _junit(self, name: str) -> Path:
        return paths.tmp_dir() / self.id / f"junit-{name}.xml"

    def _attempt(self, cycle: int, attempt: int, span: str, before: dict, context: dict, feedback: list[dict],
                 tests_plan: testing.TestPlan, base_tests: dict | None) -> str:
        """One implement call and the runner's judgement of its change; raises Refused."""
        self.attempts += 1
        self.store.update_evolution(self.id, {"attempts": self.attempts})
        context.pop("runner", None)
        implement_agent = agents.for_phase("implement")
        change_box: list[patching.Change] = []

        def take_change(output: dict) -> None:
            change_box.append(patching.take(self.worktree, self.target_rel, self.store, output))

        context["implement"] = self._phase(cycle, "implement", span, context["plan"]["files"], before, context,
                                           accept=take_change, attempt=attempt, feedback=feedback)
        change, summary = change_box[0], context["implement"].get("summary")
        if change.empty:
            self.log.info(f"{implement_agent['name']} changed nothing: the cycle ends unchanged"
                          + (f" ({summary})" if summary else ""))
            self.history.append({"cycle": cycle, "outcome": "unchanged", "summary": summary or "", "files": []})
            return "unchanged"
        self.log.info(f"change: {len(change.files)} file(s): {', '.join(change.files[:5])}")
        verdict = self._timed(span, "judge", lambda: judge.judge(
            self.worktree, self.target_rel, before, change, tests_plan, base_tests, self._junit(f"{cycle}-{attempt}")))
        self.store.update_evolution(self.id, {"metrics_after": verdict.metrics_after, "tests": verdict.tests["status"]})
        failed_gates = [g for g in verdict.gates if g["passed"] is False]
        if verdict.problems:  # evaluate is asked only about a change the runner passed
            self._gate(cycle, span, verdict.problems)
            raise Refused("; ".join(verdict.problems), change.patch, verdict.tests, failed_gates)
        context["runner"] = {"files_changed": change.files, "metrics_after": verdict.metrics_after,
                             "gates": verdict.gates, "tests": _tests_summary(verdict.tests)}
        evaluation = self._phase(cycle, "evaluate", span, change.files, before, context, attempt=attempt,
                                 feedback=feedback)
        if evaluation["verdict"] == "fail":
            veto = f"vetoed: {agents.for_phase('evaluate')['name']}: {evaluation.get('notes') or 'verdict fail'}"
            self._gate(cycle, span, [veto])
            raise Refused(veto, change.patch, verdict.tests, failed_gates)
        self._gate(cycle, span, [])
        self.log.info(f"quality gates passed; tests {verdict.tests['status']}")
        self.files_changed.update(change.files)
        self.history.append({"cycle": cycle, "outcome": "succeeded", "summary": summary or "", "files": change.files})
        publication = publish.Publication(
            self.id, self.record["focus"], cycle, self.record["cycles"], bool(self.record["dry_run"]), self.repo,
            self.worktree, self.branch, self.target_rel, before, verdict, change, summary, list(feedback), attempt)
        sha = self._timed(span, "commit", lambda: publish.commit(publication, self.log))
        pr = self._timed(span, "pull request",
                         lambda: publish.open_pull_request(publication, sha, self.store, self.log))
        if pr:
            self.store.update_evolution(self.id, {"pr_number": pr["number"], "pr_url": pr["html_url"]})
        return "succeeded"

    def _gate(self, cycle: int, span: str, problems: list[str]) -> None:
        """The gate's span: the runner's verdict, with the evaluate agent's veto if it gave one."""
        self.log.phase = "gate"
        self._span(secrets.token_hex(8), span, "gate", stamp(), "error" if problems else "ok",
                   {"cycle": cycle, "problems": problems})

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

    def _reserve(self, runtime: agents.Runtime, agent: dict, payload: dict) -> None:
        """DESIGN §5 Budget: the call's worst case must fit in what is left of the budget, or it is not made."""
        if self.budget is None:
            return
        worst, left = runtime.worst_case_usd(payload), self.budget - self.cost
        if left <= 0 or worst > left:
            raise CostLimit(f"cost-limit: {agent['name']} could cost up to ${worst:.4f} but ${max(left, 0):.4f} of "
                            f"the budget ${self.budget:.2f} is left; the call was not made")
        self.log.info(f"budget: ${worst:.4f} reserved for {agent['name']}, ${left:.4f} left")

    def _honour_stop(self, where: str) -> None:
        if self.stop_requested.is_set() or self.store.get_evolution(self.id)["status"] == "stopping":
            raise CycleEnded("stopped", f"stopped: graceful stop requested {where}")

    # ---- one agent call -------------------------------------------------------------------
    def _input(self, agent: dict, task_id: str, cycle: int, phase: str, span_id: str, files: list[str],
               before: dict, context: dict, attempt: int = 1, feedback: list[dict] = ()) -> dict:
        """The §5 input document."""
        budget = int(self.settings["evolution"]["agent_context_bytes"])
        return {
            "evolution_id": self.id, "task_id": task_id, "cycle": cycle, "attempt": attempt, "phase": phase,
            "target": self.target_rel,
            "worktree": str(self.worktree) if agent["runtime"] in contract.ON_THIS_MACHINE else None,
            "focus": self.record["focus"], "dry_run": bool(self.record["dry_run"]),
            "repo": {"remote_url": self.remote_url, "base_sha": self.base_sha, "branch": self.branch},
            **agent_context.build(self.worktree, self.target_rel, phase, self.record["focus"], files, budget),
            "patterns": self.patterns, "gates": config.gates(), "metrics": before, "tests": self.tests_view,
            "context": context, "feedback": list(feedback), "history": list(self.history),
            "traceparent": f"00-{self.trace_id}-{span_id}-01",
        }

    def _phase(self, cycle: int, phase: str, parent_span: str, files: list[str], before: dict, context: dict,
               accept=None, attempt: int = 1, feedback: list[dict] = ()) -> dict:
        """Run the phase's agent as one task; its checked output, or CycleEnded with the task's error."""
        self._boundary(phase)
        agent = agents.for_phase(phase)
        task_id, span_id = new_id("task"), secrets.token_hex(8)
        self.log.phase = phase
        started, clock = stamp(), time.monotonic()
        self.store.update_evolution(self.id, {"current_phase": phase})
        outside = self._outside(agent)  # before the task exists: a failure here leaves no task running
        self.store.create_task({"id": task_id, "evolution_id": self.id, "cycle": cycle, "phase": phase,
                                "agent": agent["name"], "status": "running", "attempts": 1, "started_at": iso(),
                                "trace_id": self.trace_id, "attempt": attempt,
                                "model": agent.get("model_id") or agent.get("model")})
        payload = self._input(agent, task_id, cycle, phase, span_id, files, before, context, attempt, feedback)
        self.log.info(f"{agent['name']} ({agent['runtime']}) started: task {task_id}")
        reply, raw, error, stderr_tail, refused, over_budget = None, None, None, [], {}, False
        try:
            runtime = agents.runtime(agent)
            self._reserve(runtime, agent, payload)
            raw = runtime.invoke(payload, float(agent.get("timeout_seconds") or config.phase_timeout()))
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
        except CostLimit as limit:
            error, over_budget = limit.message, True
        except ToolError as failure:
            error = f"agent-error: {agent['name']}: {failure}"
        except Exception as crash:  # whatever an agent returns, its task ends (DESIGN §5): never left running
            error = f"agent-error: {agent['name']}: {type(crash).__name__}: {str(crash)[:300]}"
        escape = self._escaped(agent, outside)
        if escape:
            reply, error = None, escape
        error = _error_line(error) if error else None
        spent = (reply.cost_usd, reply.tokens_in, reply.tokens_out) if reply else contract.paid(
            raw if isinstance(raw, dict) else refused)
        spent = (*spent, cached_tokens(raw if isinstance(raw, dict) else refused))
        self._record_task(task_id, phase, payload, raw, reply, error, stderr_tail, spent, time.monotonic() - clock)
        self._span(span_id, parent_span, f"{phase} {agent['name']}", started, "error" if error else "ok",
                   {"task_id": task_id, "evolution_id": self.id, "agent": agent["name"], "phase": phase,
                    "cycle": cycle})
        if over_budget:
            self.log.error(error)
            raise CycleEnded("failed", error)
        if error:
            self.log.error(f"{agent['name']} failed after {time.monotonic() - clock:.1f}s: {error}")
            self._honour_stop(f"before {NEXT_STEP[phase]}")  # a stop asked during a failed phase still wins
            reason = f"{phase} failed (task {task_id}): {error}"
            if phase == "implement" and error.startswith("bad-patch:"):
                raise Refused(reason, _sent_change(raw))
            raise CycleEnded("failed", reason)
        self.log.info(f"{agent['name']} done in {time.monotonic() - clock:.1f}s: {_summary(phase, reply.output)}")
        return log.masked(reply.output)  # no later phase, artifact or backup sees a token it carried

    def _outside(self, agent: dict) -> dict | None:
        """What an agent on this machine could change outside its worktree, noted before its phase."""
        return self._checkout_state() if agent["runtime"] in contract.ON_THIS_MACHINE else None

    def _checkout_state(self) -> dict:
        return escapes.snapshot(self.repo, own=(paths.history_dir().resolve(),))

    def _escaped(self, agent: dict, outside: dict | None) -> str | None:
        """The escaped: error line when the phase changed the operator's checkout or git settings (DESIGN §5)."""
        if outside is None:
            return None
        try:
            return escapes.escaped(agent["name"], outside, self._checkout_state())
        except ToolError as failure:
            return f"escaped: {agent['name']}: the operator's checkout cannot be checked after the phase: {failure}"

    def _record_task(self, task_id: str, phase: str, payload: dict, raw, reply, error: str | None,
                     stderr_tail: list[str], spent: tuple, seconds: float) -> None:
        """The artifact (the input without file contents, the raw output), the task row and the costs
        (spent: cost_usd, tokens in, tokens out, tokens cached; a failed call counts what it was paid)."""
        cost, tokens_in, tokens_out, tokens_cached = spent
        self.cost += cost
        self.cycle_cost += cost
        stored_input = {**payload, "files": [{"path": f["path"], "bytes": len(f["content"] or "")}
                                             for f in payload["files"]], "context": _stored_context(payload["context"])}
        output = raw.get("output") if isinstance(raw, dict) else raw
        fsutil.atomic_write(paths.evolution_dir(self.id) / "tasks" / f"{task_id}.json", json.dumps(
            {"input": stored_input, "output": log.masked(output), "error": error,
             "stderr_tail": [log.mask_secrets(line) for line in stderr_tail]}, default=str, indent=1))
        self.store.update_task(task_id, {
            "status": "failed" if error else "succeeded", "finished_at": iso(), "duration_s": round(seconds, 3),
            "cost_usd": cost, "error": error, "output_summary": error[:200] if error else _summary(phase, reply.output),
            "tokens_in": tokens_in, "tokens_out": tokens_out, "tokens_cached": tokens_cached})
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


def _error_line(error: str) -> str:
    """A task's error as it is stored and shown: one line, masked, then cut to ERROR_CHARS (an agent's
    own error message can be megabytes long)."""
    line = log.mask_secrets(" ".join(error.split()))
    return line if len(line) <= ERROR_CHARS else f"{line[:ERROR_CHARS - 3]}..."


def _stored_context(context: dict) -> dict:
    """The input's context as a task artifact keeps it: an earlier output larger than STORED_CONTEXT_BYTES is
    named, not copied again (it is in its own task's artifact), so that artifacts stay bounded."""
    stored = {}
    for phase, output in context.items():
        size = len(json.dumps(output, default=str))
        stored[phase] = output if size <= STORED_CONTEXT_BYTES else {
            "omitted": f"{size} bytes; the whole output is in the {phase} task's artifact"}
    return stored


def cached_tokens(reply) -> int | None:
    """The prompt tokens a model runtime read from cache ({tokens: {cached}}); None when not reported."""
    tokens = reply.get("tokens") if isinstance(reply, dict) else None
    cached = tokens.get("cached") if isinstance(tokens, dict) else None
    return cached if isinstance(cached, int) and not isinstance(cached, bool) and cached >= 0 else None


def _summary(phase: str, output: dict) -> str:
    """One short line per task for tables, from checked keys only; the artifact keeps the whole output."""
    if phase == "research":
        return log.mask_secrets(output["summary"])[:200]
    if phase == "plan":
        return f"{len(output['files'])} file(s) planned"
    if phase == "implement":
        if output.get("patch") is not None:
            return f"patch of {len(output['patch'])} bytes" if output["patch"].strip() else "no change"
        for form, what in (("edits", "edit(s)"), ("files", "whole file(s)")):
            if output.get(form) is not None:
                return f"{len(output[form])} {what}"
        return f"{len(output['changed_files'])} file(s) edited in place"
    notes = log.mask_secrets(output.get("notes") or "")[:150]
    return f"verdict {output['verdict']}" + (f": {notes}" if notes else "")


def _sent_change(raw) -> str:
    """What a refused implement reply proposed, as text for the next attempt's feedback."""
    output = raw.get("output") if isinstance(raw, dict) else None
    if not isinstance(output, dict):
        return ""
    if isinstance(output.get("patch"), str):
        return output["patch"]
    sent = {form: output[form] for form in ("edits", "files") if output.get(form) is not None}
    return json.dumps(sent, indent=1, default=str) if sent else ""


def _tests_summary(tests: dict) -> dict:
    """The test result as the evaluate agent sees it: without the passing ids and the output."""
    return {key: tests.get(key) for key in ("status", "command", "summary", "exit_code", "failed", "blamed")}
