"""Figure: agent_status.py --all with 50 agents on a moto server, concurrent against one after another.

Starts a moto server (its own process, 127.0.0.1), creates 25 Lambda and 25 ECS agents,
then times the same status queries (a) one after another and (b) through agent_ops'
thread pool, in this process, and (c) the script itself as an operator runs it.
Goal: (b) at most 0.4 of (a).

On loopback a moto server answers in a few ms of its own CPU (one process, one GIL), so
the pool can only overlap the client's and the server's work; against AWS each call also
waits a network round trip, which the pool overlaps. --rtt-ms adds that wait to every
request (a botocore before-send hook, the same for both modes) to show it.

    python benchmarks/bench_agent_status.py [--agents 50] [--rounds 5] [--rtt-ms 20]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_moto(port: int) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("moto server did not start")


def create_agents(count: int) -> list[dict]:
    import boto3

    lam, ecs, iam = (boto3.client(s, region_name="us-east-1") for s in ("lambda", "ecs", "iam"))
    role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("index.py", "def handler(e, c):\n    return e\n")
    ecs.create_cluster(clusterName="t-developer")
    ecs.register_task_definition(family="agent", containerDefinitions=[{"name": "a", "image": "i", "memory": 256}])
    agents = []
    for index in range(count):
        name = f"agent-{index:02d}"
        if index % 2 == 0:
            lam.create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler="index.handler",
                                Code={"ZipFile": archive.getvalue()})
            agents.append({"name": name, "phase": "research", "runtime": "lambda", "function_name": name})
        else:
            ecs.create_service(cluster="t-developer", serviceName=name, taskDefinition="agent", desiredCount=1)
            agents.append({"name": name, "phase": "plan", "runtime": "ecs", "service": name})
    return agents


def timed(func) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="Simulated network round trip per request.")
    options = parser.parse_args()

    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="bench-status-"))
    (work / "config").mkdir()
    for source in (ROOT / "config").glob("*.yaml"):
        (work / "config" / source.name).write_text(source.read_text())
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1",
                      TDEV_CONFIG_DIR=str(work / "config"), TDEV_HISTORY_DIR=str(work / "history"),
                      TDEV_LOG_DIR=str(work / "logs"), TDEV_BACKUP_DIR=str(work / "backups"))
    server = start_moto(port)
    try:
        agents = create_agents(options.agents)
        (work / "config" / "agents.yaml").write_text(
            "agents:\n" + "".join(f"  - {json.dumps(a)}\n" for a in agents))
        from lib.adapters import aws
        from lib.agents import fleet

        fleet.prepare(agents, "warm up")
        if options.rtt_ms:
            for service in ("lambda", "ecs", "cloudwatch"):
                aws.client(service).meta.events.register(
                    "before-send", lambda rtt=options.rtt_ms / 1000, **_: time.sleep(rtt))
        fleet.status_all(agents)  # warm both sides once
        sequential, concurrent = [], []
        for _ in range(options.rounds):  # interleaved: background load hits both alike
            sequential.append(timed(lambda: [fleet.status_of(a) for a in agents]))
            concurrent.append(timed(lambda: fleet.status_all(agents)))
        script = [timed(lambda: subprocess.run([sys.executable, str(ROOT / "scripts" / "agent_status.py"), "--all",
                                                "--json"], check=True, capture_output=True))
                  for _ in range(options.rounds)]
        rows = fleet.status_all(agents)
    finally:
        server.terminate()
        server.wait()
    seq, con = statistics.median(sequential), statistics.median(concurrent)
    print(json.dumps({
        "agents": options.agents, "rounds": options.rounds, "workers": fleet.MAX_WORKERS,
        "simulated_rtt_ms": options.rtt_ms,
        "all_ok": all(r["ok"] for r in rows),
        "sequential_s": round(seq, 3), "concurrent_s": round(con, 3), "ratio": round(con / seq, 3),
        "script_wall_s": round(statistics.median(script), 3), "script_rtt_ms": 0, "goal_ratio": 0.4,
    }, indent=2))


if __name__ == "__main__":
    main()
