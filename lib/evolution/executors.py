"""Where a runner runs (DESIGN §10) and the queue of evolutions waiting for a free slot.

`local`: a detached process on this machine (lib.evolution.lifecycle.start_detached). `stepfunctions`: a Step Functions
execution named by the evolution id that runs the same worker in an ECS Fargate task, against the shared
DynamoDB store (refused with SQLite: a task elsewhere cannot reach this machine's file).

The queue: an evolution is *dispatched* once its runner was started (a pid, or an execution ARN). At most
`executor.max_concurrent` dispatched evolutions are active across the store; the others wait as `pending` records.
`fill` starts the oldest waiting ones into the free slots. It runs when run_evolution.py creates evolutions,
when a worker ends (so that a finishing evolution hands its slot on), and after stop_evolution.py --force. Two
fillers never start one evolution twice: each fill holds the store's queue claim (a DynamoDB claim item shared
by every host; a flock for SQLite, which is one host's) while it counts and starts, the record takes its
execution ARN only while still `pending`, and Step Functions refuses a second execution of one name.
"""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from lib import config, log, paths
from lib.adapters import gitops
from lib.adapters import stepfunctions as sfn
from lib.errors import ConfigError, Conflict, ToolError, UsageError
from lib.evolution import lifecycle
from lib.evolution.lifecycle import ForceStop
from lib.store import ACTIVE, FINAL, Store, backend_name
from lib.timeparse import iso

LOCAL, STEPFUNCTIONS = "local", "stepfunctions"
EXECUTORS = paths.EXECUTORS
QUEUE_CLAIM = "evolution-queue"
#: how long one fill may hold the queue claim (a crashed holder's claim lapses after it)
QUEUE_CLAIM_SECONDS = 120.0
#: how long a filler waits for another filler to finish before giving up (its slot is then filled by the next)
QUEUE_WAIT_SECONDS = 180.0


def choose(flag: str | None) -> str:
    """--executor, else settings evolution.executor; stepfunctions only on the DynamoDB store."""
    executor = (flag or config.settings()["evolution"]["executor"]).strip().lower()
    if executor not in EXECUTORS:
        raise UsageError(f"unknown executor {executor!r}", f"use one of: {', '.join(EXECUTORS)}")
    if executor == STEPFUNCTIONS and backend_name() != "dynamodb":
        raise ConfigError(f"the stepfunctions executor needs the shared DynamoDB store; this one is "
                          f"{backend_name()} (a Fargate task cannot reach this machine's file)",
                          "set TDEV_STATE_BACKEND=dynamodb (and TDEV_STATE_TABLE), or use --executor local")
    return executor


def origin(target: Path) -> dict:
    """What a runner elsewhere needs to rebuild the target: the repository's public remote URL (never its
    credentials), the commit to start from, and the target's path inside the repository."""
    from lib.evolution.contract import public_url

    repo = gitops.repo_root(target)
    return {"remote_url": public_url(gitops.remote_url(repo)), "base_sha": gitops.git(repo, "rev-parse", "HEAD"),
            "target_path": target.relative_to(repo).as_posix()}


def dispatched(record: dict) -> bool:
    """Whether the evolution's runner was started (it holds a slot until it is final)."""
    return bool(record.get("execution_arn") or record.get("pid"))


def waiting(store: Store) -> list[dict]:
    """Pending evolutions not dispatched yet, oldest first."""
    return [r for r in reversed(store.list_evolutions(statuses=("pending",))) if not dispatched(r)]


def running(store: Store) -> list[dict]:
    """Active evolutions whose runner was started: the slots in use."""
    return [r for r in store.list_evolutions(statuses=ACTIVE) if dispatched(r)]


def max_concurrent() -> int:
    return int(config.settings()["executor"]["max_concurrent"])


@contextlib.contextmanager
def queue_claim(store: Store, wait: float = QUEUE_WAIT_SECONDS) -> Iterator[None]:
    """Hold the queue while counting and starting: the store's claim on DynamoDB (every host), a flock on
    SQLite (one host). Waits for another holder, polling, up to `wait` seconds; Conflict after that."""
    if store.backend != "dynamodb":
        path = paths.locks_dir() / f"{QUEUE_CLAIM}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    deadline, pause = time.monotonic() + wait, 0.05
    with contextlib.ExitStack() as held:
        while True:
            try:
                held.enter_context(store.exclusive(QUEUE_CLAIM, QUEUE_CLAIM_SECONDS))
                break
            except Conflict:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 1.0)
        yield


def dispatch(store: Store, record: dict) -> str:
    """Start the evolution's runner where its record says; what was started (pid N, or the execution ARN)."""
    if record.get("executor") != STEPFUNCTIONS:
        return f"pid {lifecycle.start_detached(store, record['id'])}"
    machine = sfn.state_machine_arn(config.settings()["executor"]["state_machine"])
    arn = sfn.start_execution(machine, record["id"])
    if not store.update_evolution(record["id"], {"execution_arn": arn}, expect_status=("pending",)):
        sfn.stop_execution(arn, "the evolution ended before its execution started")  # a stop won the race
        raise Conflict(f"evolution {record['id']} ended before its execution started; the execution was stopped")
    return arn


def fill(store: Store) -> list[tuple[str, str]]:
    """Start the oldest waiting evolutions into the free slots: [(evolution id, what was started)]."""
    started = []
    with queue_claim(store):
        free = max_concurrent() - len(running(store))
        for record in waiting(store)[:max(free, 0)]:
            try:
                started.append((record["id"], dispatch(store, record)))
            except Conflict:
                continue  # stopped while waiting: its slot goes to the next one
    return started


def fill_quietly(store: Store, logger=None) -> None:
    """fill, for a worker that ends: a failure to start the next is logged, never the worker's own failure."""
    try:
        for evolution_id, where in fill(store):
            if logger:
                logger.info(f"started the waiting evolution {evolution_id} ({where})")
    except ToolError as failure:
        if logger:
            logger.warning(f"could not start the waiting evolutions: {failure}")


# ---- the runner's side: a fresh clone in the container ------------------------------------------------

def checkout(record: dict, into: Path) -> Path:
    """Clone the record's repository at its base commit into `into` (a container's fresh start); the target's
    path there. A local evolution runs on the operator's checkout instead (its record target)."""
    if not record.get("remote_url") or not record.get("base_sha"):
        raise ToolError(f"evolution {record['id']} has no repository to clone (remote_url, base_sha)",
                        "start it from a checkout with an origin remote")
    into.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["git", "clone", "-q", "--no-checkout", record["remote_url"], str(into)], check=True,
                       capture_output=True, text=True, timeout=600)
    except subprocess.CalledProcessError as failure:
        raise ToolError(f"git clone of {record['remote_url']} failed: {log.mask_secrets(failure.stderr.strip())}",
                        "give the task read access to the repository") from None
    gitops.git(into, "checkout", "-q", "--detach", record["base_sha"])
    for key, value in (("user.email", "t-developer@localhost"), ("user.name", "T-Developer")):
        if not gitops.git(into, "config", "--get", key, check=False):
            gitops.git(into, "config", key, value)
    return into / (record.get("target_path") or ".")


def clone_dir(evolution_id: str) -> Path:
    return paths.history_dir() / "clones" / evolution_id


# ---- control and state -----------------------------------------------------------------------------------

def execution_state(record: dict) -> dict | None:
    """{status, error, cause} of a stepfunctions evolution's execution; None for a local or waiting one.
    An execution that cannot be read is reported as status UNKNOWN with the reason."""
    if record.get("executor") != STEPFUNCTIONS or not record.get("execution_arn"):
        return None
    try:
        described = sfn.describe_execution(record["execution_arn"])
    except ToolError as failure:
        return {"status": "UNKNOWN", "error": str(failure), "cause": None}
    return {"status": described["status"], "error": described.get("error"), "cause": described.get("cause")}


def execution_ended(record: dict, state: dict | None) -> str | None:
    """The CRITICAL line for an active evolution whose execution ended (failed, timed out, aborted: the runner
    can no longer write its end), with the command that records it; None otherwise."""
    if not state or record["status"] not in ACTIVE or state["status"] not in sfn.ENDED_BADLY + ("SUCCEEDED",):
        return None
    why = f" ({state['error']})" if state.get("error") else ""
    return (f"marked {record['status']} but its Step Functions execution is {state['status']}{why}; "
            f"record it: python scripts/stop_evolution.py --id {record['id']} --force")


def force_stop(store: Store, evolution_id: str) -> ForceStop:
    """stop --force wherever the runner runs: a local runner's process group (lifecycle.force_stop), or a
    stepfunctions evolution's execution (DESIGN §10: StopExecution, not a signal)."""
    record = store.evolution_or_fail(evolution_id)
    if record.get("executor") != STEPFUNCTIONS or record["status"] in FINAL:
        return lifecycle.force_stop(store, evolution_id)
    outcome, detail = _force_stop_remote(store, record)
    return ForceStop(outcome, store.evolution_or_fail(evolution_id), detail)


def _force_stop_remote(store: Store, record: dict) -> tuple[str, str]:
    """Record killed (the store picks one winner), then StopExecution (ECS then stops the task: SIGTERM,
    SIGKILL after 30 s)."""
    if not lifecycle.record_killed(store, record["id"], "killed: force stop by operator (StopExecution)"):
        return "lost", "ended meanwhile"
    if not record.get("execution_arn"):
        return "gone", "it was waiting for a slot: no execution had started"
    stopped = sfn.stop_execution(record["execution_arn"], f"stop_evolution.py --force at {iso()}")
    return ("killed", "execution stopped") if stopped else ("gone", "its execution had ended already")


def with_execution(records: list[dict]) -> list[dict]:
    """Records with `execution_status` (their Step Functions execution's status; None for a local runner or one
    waiting for a slot) and `problem` (the CRITICAL line of an execution that ended under an active record)."""
    shown = []
    for record in records:
        state = execution_state(record)
        shown.append({**record, "execution_status": state["status"] if state else None,
                      "problem": execution_ended(record, state)})
    return shown


def where(record: dict) -> str:
    """The EXECUTOR column: local, or stepfunctions with its execution's status (waiting: no slot yet)."""
    if record.get("executor") != STEPFUNCTIONS:
        return LOCAL if record.get("pid") or not record.get("executor") else "local (waiting)"
    return f"stepfunctions {record.get('execution_status') or 'waiting'}"
