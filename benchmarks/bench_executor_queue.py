"""Scheduling overhead of the stepfunctions executor (issue 20), in the Fargate stand-in, against the local
executor measured in the same run.

N dry-run quality evolutions of small packages, at most M at once. For each evolution: dispatch (the queue
started it: StartExecution answered, or the local runner was spawned) to runner start (its record says
`running`: the worker cloned, built its Runner and claimed the record), polled every 10 ms. For the ones that
waited: hand-on, from the moment a slot freed (an earlier evolution's record became final) to the waiting
one's runner start. The stand-in path includes Step Functions in moto, moto's ECS, the stand-in's 0.1 s poll,
a fresh `git clone` and the interpreter start; Fargate's own provisioning (30-60 s in AWS) is not in it.

Usage: python benchmarks/bench_executor_queue.py [--evolutions 10] [--max-concurrent 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "support"))

CLUSTER = "t-developer"


def make_repo(base: Path, count: int) -> list[Path]:
    """A repository with an origin and `count` small packages: the targets."""
    origin, work = base / "origin.git", base / "repo"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    targets = []
    for number in range(count):
        package = work / "packages" / f"p{number:02d}"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("import os\n\n\ndef value(a,b):\n    return a+b\n")
        targets.append(package)
    for command in (["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@e", "commit", "-qm", "i"],
                    ["remote", "add", "origin", str(origin)], ["push", "-q", "origin", "main"]):
        subprocess.run(["git", *command], cwd=work, check=True)
    return targets


def watch(store, ids: list[str], timeout: float) -> tuple[dict, dict]:
    """Poll the store every 10 ms until every evolution is final: when each was first seen running, and final."""
    from lib.store import FINAL

    running, final = {}, {}
    deadline = time.monotonic() + timeout
    while len(final) < len(ids) and time.monotonic() < deadline:
        for evolution_id in ids:
            if evolution_id in final:
                continue
            record = store.get_evolution(evolution_id)
            now = time.monotonic()
            if record["status"] != "pending" and evolution_id not in running:
                running[evolution_id] = now
            if record["status"] in FINAL:
                final[evolution_id] = now
                running.setdefault(evolution_id, now)
        time.sleep(0.01)
    if len(final) < len(ids):
        raise SystemExit(f"only {len(final)} of {len(ids)} evolutions ended within {timeout:g}s")
    return running, final


def measure(executor: str, targets: list[Path], store, dispatched: dict[str, float]) -> dict:
    """Create the evolutions, fill the queue (timing each dispatch), and follow them to the end."""
    from lib.evolution import executors, lifecycle

    ids = []
    for target in targets:
        record = lifecycle.create(store, target, "quality", 1, True, executor=executor, **executors.origin(target))
        ids.append(record["id"])
    original = executors.dispatch

    def timed(store_, record):
        where = original(store_, record)
        dispatched[record["id"]] = time.monotonic()
        return where

    executors.dispatch = timed  # every filler of this process: the run's own first fill
    try:
        executors.fill(store)
    finally:
        executors.dispatch = original
    running, final = watch(store, ids, 600)
    first = [running[i] - dispatched[i] for i in ids if i in dispatched]
    order = sorted(final.values())
    waited = sorted((i for i in ids if i not in dispatched), key=running.get)
    hand_on = [running[i] - order[k] for k, i in enumerate(waited)]  # the k-th slot freed went to the k-th waiter
    statuses = {store.get_evolution(i)["status"] for i in ids}
    return {"dispatch_to_start": first, "hand_on": hand_on, "statuses": statuses}


def run_local(base: Path, count: int) -> dict:
    os.environ.update(TDEV_STATE_BACKEND="sqlite", TDEV_HISTORY_DIR=str(base / "local-history"))
    from lib import config
    from lib.store import open_store

    config.settings.cache_clear()
    store = open_store(create=True)
    return measure("local", make_repo(base / "local", count), store, {})


def run_stepfunctions(base: Path, count: int) -> dict:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update(MOTO_PORT=str(port), AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1",
                      TDEV_STATE_BACKEND="dynamodb", TDEV_STATE_TABLE="bench-queue",
                      TDEV_HISTORY_DIR=str(base / "sfn-history"))
    import boto3
    from fargate_standin import FargateStandIn, prepare

    from lib import config
    from lib.store import open_store

    made = prepare(endpoint, CLUSTER)
    config.settings.cache_clear()
    settings = config.settings()["executor"]
    settings.update(subnets=[made["subnet"]], security_groups=[made["security_group"]])
    from lib.adapters import stepfunctions as sfn
    from lib.store.dynamodb import table_name

    machine = boto3.client("stepfunctions").create_state_machine(
        name=settings["state_machine"], definition=json.dumps(sfn.definition(settings, table_name())),
        roleArn="arn:aws:iam::123456789012:role/bench")["stateMachineArn"]
    store = open_store(create=True)
    standin = FargateStandIn(dict(os.environ), CLUSTER, machine, base / "sfn").start()
    try:
        return measure("stepfunctions", make_repo(base / "sfn", count), store, {})
    finally:
        standin.stop()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evolutions", type=int, default=10)
    parser.add_argument("--max-concurrent", type=int, default=5)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="tdev-bench-queue-"))
    config_dir = base / "config"
    subprocess.run(["cp", "-r", str(ROOT / "config"), str(config_dir)], check=True)
    text = (config_dir / "settings.yaml").read_text().replace("max_concurrent: 10", f"max_concurrent: "
                                                                                   f"{args.max_concurrent}")
    (config_dir / "settings.yaml").write_text(text)
    os.environ.update(TDEV_CONFIG_DIR=str(config_dir), TDEV_LOG_DIR=str(base / "logs"), HOME=str(base))
    results = {"local": run_local(base, args.evolutions),
               "stepfunctions (stand-in)": run_stepfunctions(base, args.evolutions)}
    print(f"{args.evolutions} dry-run evolutions, max_concurrent {args.max_concurrent}; medians in seconds")
    print(f"{'executor':28} {'dispatch->runner start':>24} {'slot freed->next start':>24}  statuses")
    for name, found in results.items():
        first = statistics.median(found["dispatch_to_start"]) if found["dispatch_to_start"] else float("nan")
        hand = statistics.median(found["hand_on"]) if found["hand_on"] else float("nan")
        print(f"{name:28} {first:24.3f} {hand:24.3f}  {', '.join(sorted(found['statuses']))}")


if __name__ == "__main__":
    main()
