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

import concurrent.futures
import json
import os
import secrets
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from lib import agents, config, fsutil, log, paths
from lib.adapters import gitops
from lib.agents import AgentError
from lib.errors import ToolError
from lib.evolution import candidates, contract, escapes, judge, patching, publish, testing
from lib.evolution import context as agent_context
from lib.evolution.eventlog import EventLog
from lib.quality import measure, patterns, refusals
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

    def feedback(self, attempt: int, patch_bytes: int = FEEDBACK_PATCH_BYTES, tail_bytes: int | None = None) -> dict:
        """The feedback entry the next attempt's input carries (tail_bytes: a tighter cut of the test output)."""
        tail = self.tests.get("output_tail", "") if self.tests else ""
        tests = None if self.tests is None else {
            "exit_code": self.tests.get("exit_code"), "failed": self.tests.get("failed", []),
            "output_tail": log.mask_secrets(tail if tail_bytes is None else testing.tail(tail, tail_bytes))}
        return {"attempt": attempt, "error": log.mask_secrets(self.reason),
                "patch": cut(self.patch, patch_bytes), "tests": tests,
                "gates": [{"name": g["metric"], "before": g["before"], "after": g["value"],
                           "rule": f"{g['rule']}: {'>=' if g['direction'] == 'min' else '<='} {g['threshold']}"}
                          for g in self.gates]}

    def feedback_entries(self, attempt: int) -> list[dict]:
        """What the next attempt's feedback gains from this refusal."""
        return [self.feedback(attempt)]


class CandidatesRefused(Refused):
    """An attempt none of whose candidates passed (DESIGN §5 Candidates): one feedback entry per refused
    candidate, naming it, each cut to its share of one attempt's bounds."""

    def __init__(self, reason: str, refusals: list[tuple[candidates.Outcome, Refused]]):
        super().__init__(reason)
        self.refusals = refusals

    def feedback_entries(self, attempt: int) -> list[dict]:
        count = len(self.refusals)
        return [{**refused.feedback(attempt, candidates.share(FEEDBACK_PATCH_BYTES, count),
                                    candidates.share(testing.TAIL_BYTES, count)),
                 "candidate": outcome.number, "agent": outcome.agent}
                for outcome, refused in self.refusals]


@dataclass
class Call:
    """One agent call as the runner took it: the checked reply, or the error line that ends its task."""

    reply: contract.Reply | None = None
    raw: object = None
    error: str | None = None
    stderr_tail: list = field(default_factory=list)
    refused: dict = field(default_factory=dict)  # what a model answer the runtime refused was paid
    over_budget: bool = False


@dataclass
class Candidate:
    """One implement candidate of an attempt (DESIGN §5 Candidates): its agent, worktree, task and what came of it."""

    number: int
    agent: dict
    worktree: Path
    task_id: str = field(default_factory=lambda: new_id("task"))
    span_id: str = field(default_factory=lambda: secrets.token_hex(8))
    payload: dict = field(default_factory=dict)
    call: Call = field(default_factory=Call)
    change: patching.Change | None = None
    verdict: judge.Verdict | None = None
    started: str = ""
    seconds: float = 0.0
    judged: tuple[str, str] | None = None  # the judgement's start and end, for its span
    crash: Exception | None = None  # a runner fault in its thread, raised again once every candidate ended


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
        #: DESIGN §5 Candidates: implement changes asked for at once per attempt (1: one, as always)
        self.candidate_count = int(self.settings["evolution"]["candidates"])
        self.candidate_note: dict | None = None  # the last attempt's candidates, for attempts.json

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
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                outcome = self._attempt(cycle, attempt, span, before, context, feedback, tests_plan, base_tests)
            except Refused as refused:
                self.log.warning(f"attempt {attempt}/{self.max_attempts} refused: {refused.reason}")
                self._note_attempt(cycle, attempt, "refused", refused.reason)
                gitops.discard_changes(self.worktree)  # the next attempt starts from the cycle's start
                feedback.extend(refused.feedback_entries(attempt))
                last = log.mask_secrets(refused.reason)
                continue
            self._note_attempt(cycle, attempt, outcome, None)
            return outcome
        self.refusal = f"{self.max_attempts} attempts refused; last: {last}" if self.max_attempts > 1 else last
        self.history.append({"cycle": cycle, "outcome": "refused", "summary": self.refusal[:500], "files": []})
        self.log.error(f"cycle {cycle} refused: {self.refusal}")
        return "refused"

    def _note_attempt(self, cycle: int, attempt: int, outcome: str, error: str | None) -> None:
        """The evolution's attempts file (attempts.json beside its log), which analyze_failure shows."""
        self.attempt_log.append({"cycle": cycle, "attempt": attempt, "outcome": outcome,
                                 "error": log.mask_secrets(error) if error else None, **(self.candidate_note or {})})
        self.candidate_note = None
        fsutil.atomic_write(paths.evolution_dir(self.id) / refusals.ATTEMPTS_FILE,
                            json.dumps(self.attempt_log, indent=1))

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
        """One implement call (or, with candidates, several at once) and the runner's judgement of the change;
        raises Refused."""
        self.attempts += 1
        self.store.update_evolution(self.id, {"attempts": self.attempts})
        context.pop("runner", None)
        judged = self._implement_candidates if self.candidate_count > 1 else self._implement_one
        change, verdict, chosen = judged(cycle, attempt, span, before, context, feedback, tests_plan, base_tests)
        summary = context["implement"].get("summary")
        if change.empty:
            who = (agents.for_phase("implement")["name"] if self.candidate_count == 1
                   else f"the {self.candidate_count} candidates")
            self.log.info(f"{who} changed nothing: the cycle ends unchanged" + (f" ({summary})" if summary else ""))
            self.history.append({"cycle": cycle, "outcome": "unchanged", "summary": summary or "", "files": []})
            return "unchanged"
        failed_gates = [g for g in verdict.gates if g["passed"] is False]
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
            self.worktree, self.branch, self.target_rel, before, verdict, change, summary, list(feedback), attempt,
            chosen)
        sha = self._timed(span, "commit", lambda: publish.commit(publication, self.log))
        pr = self._timed(span, "pull request",
                         lambda: publish.open_pull_request(publication, sha, self.store, self.log))
        if pr:
            self.store.update_evolution(self.id, {"pr_number": pr["number"], "pr_url": pr["html_url"]})
        return "succeeded"

    def _implement_one(self, cycle: int, attempt: int, span: str, before: dict, context: dict, feedback: list[dict],
                       tests_plan: testing.TestPlan, base_tests: dict | None) -> tuple:
        """The implement call in the evolution's worktree and the judgement of its change: (change, verdict, None),
        the verdict None for an empty change; raises Refused."""
        applied: list[patching.Change] = []  # what the phase's accept step applied, read back once it ends

        def apply_change(output: dict) -> None:
            applied.append(patching.apply_output(self.worktree, self.target_rel, self.store, output))

        context["implement"] = self._phase(cycle, "implement", span, context["plan"]["files"], before, context,
                                           accept=apply_change, attempt=attempt, feedback=feedback)
        change = applied[0]
        if change.empty:
            return change, None, None
        self.log.info(f"change: {len(change.files)} file(s): {', '.join(change.files[:5])}")
        verdict = self._timed(span, "judge", lambda: judge.judge(
            self.worktree, self.target_rel, before, change, tests_plan, base_tests, self._junit(f"{cycle}-{attempt}")))
        self.store.update_evolution(self.id, {"metrics_after": verdict.metrics_after, "tests": verdict.tests["status"]})
        if verdict.problems:  # evaluate is asked only about a change the runner passed
            self._gate(cycle, span, verdict.problems)
            raise Refused("; ".join(verdict.problems), change.patch, verdict.tests,
                          [g for g in verdict.gates if g["passed"] is False])
        return change, verdict, None

    # ---- candidates (DESIGN §5 Candidates) --------------------------------------------------------
    def _implement_candidates(self, cycle: int, attempt: int, span: str, before: dict, context: dict,
                              feedback: list[dict], tests_plan: testing.TestPlan, base_tests: dict | None) -> tuple:
        """N implement calls at once, each in a worktree of its own and judged there as a single attempt is; the
        passing change with the best gain is taken into the evolution's worktree: (change, verdict, why).
        An empty change when every candidate changed nothing; raises Refused when none passed."""
        self._boundary("implement")
        self.log.phase = "implement"
        self.store.update_evolution(self.id, {"current_phase": "implement"})
        registered = agents.registered_for("implement") or [agents.for_phase("implement")]  # none: for_phase says so
        head = gitops.git(self.worktree, "rev-parse", "HEAD")
        batch: list[Candidate] = []
        try:
            for number, agent in enumerate(candidates.agents_for(registered, self.candidate_count), 1):
                batch.append(Candidate(number, agent, candidates.worktree(paths.worktrees_dir(), self.id, number)))
                if batch[-1].worktree.exists():  # a leftover of a killed runner
                    gitops.remove_worktree(self.repo, batch[-1].worktree)
                gitops.add_worktree(self.repo, batch[-1].worktree, None, head)
            outside = self._checkout_state() if any(
                c.agent["runtime"] in contract.ON_THIS_MACHINE for c in batch) else None
            for candidate in batch:  # every input first: a failure here leaves no task running
                candidate.payload = self._input(candidate.agent, candidate.task_id, cycle, "implement",
                                                candidate.span_id, context["plan"]["files"], before, context,
                                                attempt, feedback, candidate)
            for candidate in batch:
                self.store.create_task({
                    "id": candidate.task_id, "evolution_id": self.id, "cycle": cycle, "phase": "implement",
                    "agent": candidate.agent["name"], "status": "running", "attempts": 1, "started_at": iso(),
                    "trace_id": self.trace_id, "attempt": attempt,
                    "model": candidate.agent.get("model_id") or candidate.agent.get("model")})
            self._reserve_candidates(batch, span, cycle)
            self.log.info(f"{len(batch)} candidates started: " + ", ".join(
                f"{c.number} {c.agent['name']} (task {c.task_id})" for c in batch))
            with concurrent.futures.ThreadPoolExecutor(len(batch), thread_name_prefix="candidate") as pool:
                for candidate in batch:  # leaving the block waits for every one of them
                    pool.submit(self._run_candidate, candidate, before, tests_plan, base_tests, cycle, attempt)
            # one comparison around the batch: which of the candidates running at once changed it cannot be told
            escape = self._escaped({"name": " or ".join(dict.fromkeys(
                c.agent["name"] for c in batch if c.agent["runtime"] in contract.ON_THIS_MACHINE))}, outside)
            outcomes = [self._settle_candidate(candidate, escape, span, cycle, before) for candidate in batch]
            crashed = next((c.crash for c in batch if c.crash), None)
            if crashed:
                raise crashed
            return self._choose(cycle, attempt, span, batch, outcomes, escape, context)
        finally:
            for candidate in batch:
                try:
                    gitops.remove_worktree(self.repo, candidate.worktree)
                except ToolError as failure:
                    self.log.warning(f"candidate worktree {candidate.worktree} not removed: {failure}")

    def _reserve_candidates(self, batch: list[Candidate], span: str, cycle: int) -> None:
        """DESIGN §5 Budget: every candidate's worst case is reserved before any is asked; when they do not all
        fit, no call is made, each task fails with the cost-limit line and the evolution ends."""
        if self.budget is None:
            return
        worst = 0.0
        for candidate in batch:
            try:
                worst += agents.runtime(candidate.agent).worst_case_usd(candidate.payload)
            except ToolError:  # a runtime that cannot be made fails its own call, costing nothing
                continue
        left = self.budget - self.cost
        if left > 0 and worst <= left:
            self.log.info(f"budget: ${worst:.4f} reserved for {len(batch)} candidates, ${left:.4f} left")
            return
        error = (f"cost-limit: {len(batch)} candidates could cost up to ${worst:.4f} but ${max(left, 0):.4f} of the "
                 f"budget ${self.budget:.2f} is left; no call was made")
        for candidate in batch:
            self._record_task(candidate.task_id, "implement", candidate.payload, None, None, error, [],
                              (0.0, None, None, None), 0.0,
                              f"candidate {candidate.number}/{self.candidate_count}: {candidates.FAILED}: ")
            self._span(candidate.span_id, span, f"implement {candidate.agent['name']} (candidate "
                                                f"{candidate.number})", stamp(), "error",
                       {"task_id": candidate.task_id, "cycle": cycle, "candidate": candidate.number})
        self.log.error(error)
        raise CycleEnded("failed", error)

    def _run_candidate(self, candidate: Candidate, before: dict, tests_plan: testing.TestPlan,
                       base_tests: dict | None, cycle: int, attempt: int) -> None:
        """In a thread of its own: the candidate's agent call, its change taken under the patch rules in its own
        worktree, then the judgement there. Never raises: the candidate keeps what happened. Its own store
        connection: the runner's belongs to the main thread."""
        candidate.started, clock = stamp(), time.monotonic()
        store = None
        try:
            store = open_store(create=True)

            def apply_change(output: dict) -> None:
                candidate.change = patching.apply_output(candidate.worktree, self.target_rel, store, output)

            candidate.call = self._invoke(candidate.agent, candidate.payload, "implement", apply_change, reserve=False)
            candidate.seconds = time.monotonic() - clock
            if candidate.call.error is None and not candidate.change.empty:
                judging = stamp()
                candidate.verdict = judge.judge(candidate.worktree, self.target_rel, before, candidate.change,
                                                tests_plan, base_tests,
                                                self._junit(f"{cycle}-{attempt}-c{candidate.number}"))
                candidate.judged = (judging, stamp())
        except Exception as crash:  # raised again in the main thread, as a single attempt's would be
            candidate.crash = crash
        finally:
            candidate.seconds = candidate.seconds or time.monotonic() - clock
            if store is not None:
                store.close()

    def _settle_candidate(self, candidate: Candidate, escape: str | None, span: str, cycle: int,
                          before: dict) -> candidates.Outcome:
        """Back in the main thread: the candidate's outcome, its task row, spans and log lines."""
        call, name = candidate.call, candidate.agent["name"]
        if escape and candidate.agent["runtime"] in contract.ON_THIS_MACHINE:
            call.reply, call.error = None, escape
        error = _error_line(call.error) if call.error else None
        outcome = candidates.Outcome(candidate.number, name, candidates.PASSED, task_id=candidate.task_id)
        if candidate.crash:
            outcome.status, outcome.error = candidates.FAILED, f"runner: {type(candidate.crash).__name__}"
        elif error:
            outcome.status = candidates.REFUSED if error.startswith("bad-patch:") else candidates.FAILED
            outcome.error = f"implement failed (task {candidate.task_id}): {error}"
        elif candidate.change.empty:
            outcome.status = candidates.UNCHANGED
        elif candidate.verdict.problems:
            outcome.status, outcome.error = candidates.REFUSED, "; ".join(candidate.verdict.problems)
        if candidate.verdict is not None:
            after = candidate.verdict.metrics_after
            outcome.gain = candidates.gain(self.record["focus"], before, after)
            outcome.lines = candidates.lines_changed(candidate.change.entries)
            outcome.moves = candidates.moves(self.record["focus"], before, after)
        label = f"candidate {candidate.number}/{self.candidate_count}: {outcome.status}: "
        self._record_task(candidate.task_id, "implement", candidate.payload, call.raw, call.reply, error,
                          call.stderr_tail, _spent(call), candidate.seconds, label)
        self._span(candidate.span_id, span, f"implement {name} (candidate {candidate.number})", candidate.started,
                   "error" if error else "ok", {"task_id": candidate.task_id, "evolution_id": self.id, "agent": name,
                                                "phase": "implement", "cycle": cycle, "candidate": candidate.number})
        if candidate.judged:
            self._span(secrets.token_hex(8), span, f"judge candidate {candidate.number}", *candidate.judged,
                       {"candidate": candidate.number, "problems": candidate.verdict.problems})
        detail = outcome.error or ("no change" if outcome.gain is None
                                   else f"gain {outcome.gain:+.4f}, {outcome.lines} lines changed")
        (self.log.info if outcome.status in (candidates.PASSED, candidates.UNCHANGED) else self.log.warning)(
            f"candidate {candidate.number} ({name}) {outcome.status} after {candidate.seconds:.1f}s: {detail}")
        return outcome

    def _choose(self, cycle: int, attempt: int, span: str, batch: list[Candidate], outcomes: list, escape: str | None,
                context: dict) -> tuple:
        """The winner taken into the evolution's worktree, or how the attempt ends when none passed."""
        note = {"candidates": [outcome.as_json() for outcome in outcomes], "chosen": None, "why": None}
        self.candidate_note = note
        if escape:
            self._note_attempt(cycle, attempt, "failed", escape)
            raise CycleEnded("failed", escape)
        winner = candidates.choose(outcomes)
        shown = batch[winner.number - 1] if winner else next((c for c in batch if c.verdict is not None), None)
        if shown:  # the record's metrics after and tests: the winner's, else the first judged candidate's
            self.store.update_evolution(self.id, {"metrics_after": shown.verdict.metrics_after,
                                                  "tests": shown.verdict.tests["status"]})
        if winner is None:
            failed = next((o for o in outcomes if o.status == candidates.FAILED), None)
            if failed:
                self._honour_stop("before evaluate")
                self._note_attempt(cycle, attempt, "failed", failed.error)
                raise CycleEnded("failed", failed.error)
            refused = [(o, c) for o, c in zip(outcomes, batch, strict=True) if o.status == candidates.REFUSED]
            if not refused:
                context["implement"] = log.masked(batch[0].call.reply.output)
                return patching.Change("", []), None, None
            self._gate(cycle, span, [o.error for o, _ in refused])
            raise CandidatesRefused(candidates.refusal(outcomes), [(o, _candidate_refusal(o, c)) for o, c in refused])
        chosen = batch[winner.number - 1]
        note.update(chosen=winner.number, why=candidates.why(winner, outcomes, self.record["focus"]))
        gitops.discard_changes(self.worktree)
        gitops.apply_patch(self.worktree, chosen.change.patch)
        context["implement"] = log.masked(chosen.call.reply.output)
        self.log.info(f"candidate {winner.number} ({winner.agent}) chosen: {note['why']}")
        self.log.info(f"change: {len(chosen.change.files)} file(s): {', '.join(chosen.change.files[:5])}")
        return chosen.change, chosen.verdict, f"candidate {winner.number} of {len(batch)}: {note['why']}"

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
               before: dict, context: dict, attempt: int = 1, feedback: list[dict] = (),
               candidate: Candidate | None = None) -> dict:
        """The §5 input document; a candidate's names its own worktree and which candidate it is."""
        budget = int(self.settings["evolution"]["agent_context_bytes"])
        worktree = candidate.worktree if candidate else self.worktree
        return {
            "evolution_id": self.id, "task_id": task_id, "cycle": cycle, "attempt": attempt, "phase": phase,
            "target": self.target_rel,
            "worktree": str(worktree) if agent["runtime"] in contract.ON_THIS_MACHINE else None,
            "focus": self.record["focus"], "dry_run": bool(self.record["dry_run"]),
            "repo": {"remote_url": self.remote_url, "base_sha": self.base_sha, "branch": self.branch},
            **agent_context.build(self.worktree, self.target_rel, phase, self.record["focus"], files, budget),
            "patterns": self.patterns, "gates": config.gates(), "metrics": before, "tests": self.tests_view,
            "context": context, "feedback": list(feedback), "history": list(self.history),
            "traceparent": f"00-{self.trace_id}-{span_id}-01",
            **({"candidate": candidate.number, "candidates": self.candidate_count} if candidate else {}),
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
        call = self._invoke(agent, payload, phase, accept, reserve=True)
        escape = self._escaped(agent, outside)
        if escape:
            call.reply, call.error = None, escape
        error = _error_line(call.error) if call.error else None
        reply, raw = call.reply, call.raw
        self._record_task(task_id, phase, payload, raw, reply, error, call.stderr_tail, _spent(call),
                          time.monotonic() - clock)
        self._span(span_id, parent_span, f"{phase} {agent['name']}", started, "error" if error else "ok",
                   {"task_id": task_id, "evolution_id": self.id, "agent": agent["name"], "phase": phase,
                    "cycle": cycle})
        if call.over_budget:
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

    def _invoke(self, agent: dict, payload: dict, phase: str, accept=None, reserve: bool = True) -> Call:
        """One agent call under the contract: reserve its worst case (unless reserved already), invoke, check the
        reply, hand its output to accept. Never raises: whatever the agent did, the Call says it (DESIGN §5)."""
        call = Call()
        try:
            runtime = agents.runtime(agent)
            if reserve:
                self._reserve(runtime, agent, payload)
            call.raw = runtime.invoke(payload, float(agent.get("timeout_seconds") or config.phase_timeout()))
            call.stderr_tail = call.raw.pop("stderr_tail", []) if isinstance(call.raw, dict) else []
            if isinstance(call.raw, dict) and call.raw.get("status") != "ok":
                why = call.raw.get("error") or "status error without a message"
                raise AgentError(f"agent-error: {agent['name']}: {why}")
            call.reply = contract.read_reply(phase, agent, call.raw, self.target_rel)
            if accept:
                accept(call.reply.output)
        except AgentError as failure:
            call.error, call.stderr_tail = failure.message, failure.stderr_tail or call.stderr_tail
            call.refused = {"cost_usd": failure.cost_usd, "tokens": failure.tokens}  # a model answer refused
        except CostLimit as limit:
            call.error, call.over_budget = limit.message, True
        except ToolError as failure:
            call.error = f"agent-error: {agent['name']}: {failure}"
        except Exception as crash:  # whatever an agent returns, its task ends (DESIGN §5): never left running
            call.error = f"agent-error: {agent['name']}: {type(crash).__name__}: {str(crash)[:300]}"
        return call

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
                     stderr_tail: list[str], spent: tuple, seconds: float, label: str = "") -> None:
        """The artifact (the input without file contents, the raw output), the task row and the costs
        (spent: cost_usd, tokens in, tokens out, tokens cached; a failed call counts what it was paid);
        label opens the row's summary (a candidate's number and outcome)."""
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
            "cost_usd": cost, "error": error,
            "output_summary": (label + (error if error else _summary(phase, reply.output)))[:200],
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
            for leftover in paths.worktrees_dir().glob(f"{self.id}-c*"):  # candidates a crash left behind
                gitops.remove_worktree(self.repo, leftover)
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


def _spent(call: Call) -> tuple:
    """What a call cost: cost_usd, tokens in, out and cached (a failed call counts what it was paid)."""
    answer = call.raw if isinstance(call.raw, dict) else call.refused
    spent = (call.reply.cost_usd, call.reply.tokens_in, call.reply.tokens_out) if call.reply \
        else contract.cost_of_failed_call(answer)
    return (*spent, cached_tokens(answer))


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


def _candidate_refusal(outcome: candidates.Outcome, candidate: Candidate) -> Refused:
    """A refused candidate as a refusal of its own: its error, its change (or what it sent), tests and gates."""
    if candidate.verdict is None:  # refused before any judgement (bad-patch)
        return Refused(outcome.error, _sent_change(candidate.call.raw))
    verdict = candidate.verdict
    return Refused(outcome.error, candidate.change.patch, verdict.tests,
                   [g for g in verdict.gates if g["passed"] is False])


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
