"""Entry point of the detached runner: python -m lib.evolution.worker <evolution id>."""

from __future__ import annotations

import signal
import sys

from lib import log
from lib.evolution.runner import Runner
from lib.store import ACTIVE, open_store
from lib.timeparse import iso


def main(evolution_id: str) -> int:
    log.setup()
    store = open_store(create=True)
    try:

        runner = Runner(store, evolution_id)
    except Exception as failure:  # a record that cannot run must not stay 'pending' forever
        error = log.mask_secrets(f"runner: cannot start: {failure}")
        store.update_evolution(evolution_id, {"status": "failed", "finished_at": iso(), "error": error},
                               expect_status=ACTIVE)
        return 1
    signal.signal(signal.SIGTERM, runner.request_stop)
    signal.signal(signal.SIGINT, runner.request_stop)
    return 0 if runner.run() == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
