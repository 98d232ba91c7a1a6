"""Entry point of every runner, local or in a Fargate task: python -m lib.evolution.worker <evolution id>.

The local executor starts it detached on the operator's machine; the stepfunctions executor's task runs it in a
container, where it first clones the record's repository at its base commit (DESIGN §10). SIGTERM (ECS stopping
the task, which sends SIGKILL 30 s later) asks for a stop at the next phase boundary; a phase that has not ended
within SIGTERM_GRACE_SECONDS is cut short: the record is written `killed` and the process exits, so that no
evolution stays `running` after its runner is gone. When it ends, the worker hands its slot to the oldest
waiting evolution (lib.evolution.executors.fill).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from lib import log
from lib.evolution import executors, lifecycle
from lib.evolution.runner import Runner
from lib.store import ACTIVE, open_store
from lib.timeparse import iso

#: below ECS's default stopTimeout (30 s) between SIGTERM and SIGKILL, with room to write the record
SIGTERM_GRACE_SECONDS = 20.0
OK_ENDINGS = ("succeeded", "unchanged")


def _cut_short(evolution_id: str, finished: threading.Event, grace: float) -> None:
    """After SIGTERM: when the run has not ended within grace, record killed and exit (143 = 128 + SIGTERM)."""
    if finished.wait(grace):
        return
    store = open_store(create=True)
    lifecycle.record_killed(store, evolution_id, f"killed: SIGTERM (task stopped) and the phase did not end "
                                                 f"within {grace:g}s")
    executors.fill_quietly(store)
    os._exit(128 + signal.SIGTERM)


def main(evolution_id: str) -> int:
    log.setup()
    store = open_store(create=True)
    remote = False
    try:
        record = store.evolution_or_fail(evolution_id)
        remote = record.get("executor") == executors.STEPFUNCTIONS
        target = executors.checkout(record, executors.clone_dir(evolution_id)) if remote else None
        runner = Runner(store, evolution_id, target)
    except Exception as failure:  # a record that cannot run must not stay 'pending' forever
        error = log.mask_secrets(f"runner: cannot start: {failure}")
        store.update_evolution(evolution_id, {"status": "failed", "finished_at": iso(), "error": error},
                               expect_status=ACTIVE)
        if remote:  # the container's log is all an operator sees of a task that could not start
            logging.getLogger("tdev.worker").error(error)
        executors.fill_quietly(store)
        return 1
    if remote:
        runner.log.echo = sys.stdout
    finished = threading.Event()

    def on_signal(number: int, _frame) -> None:
        runner.request_stop()
        if number == signal.SIGTERM:
            threading.Thread(target=_cut_short, args=(evolution_id, finished, SIGTERM_GRACE_SECONDS),
                             name="sigterm-deadline", daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        status = runner.run()
    finally:
        finished.set()
    executors.fill_quietly(store, runner.log)
    return 0 if status in OK_ENDINGS else 1


if __name__ == "__main__":
    arguments = argparse.ArgumentParser(prog="python -m lib.evolution.worker", description="Run one evolution.")
    arguments.add_argument("evolution_id")
    sys.exit(main(arguments.parse_args().evolution_id))
