"""Figure of issue 4: `python scripts/health_check.py --full` takes at most its slowest check
plus 0.5 s, because every registered check runs at once.

An isolated installation (its own history, config, MCP config and logs) against a moto
server on 127.0.0.1 (seeded with the backup bucket, an SNS topic and a CloudWatch alarm)
and the GitHub stand-in of the tests; the MCP config has mcp-server-time, the paged stdio
server and the SDK's Streamable HTTP server. The command runs as an operator runs it (a
subprocess); wall time is compared with the slowest check's own duration_ms.

Usage:
    python benchmarks/bench_health_full.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

from github_standin import GitHubStandIn  # noqa: E402
from mcp_servers.helpers import HttpServer, script_server, time_server, write_config  # noqa: E402

SCRUB = ("AWS_", "GITHUB_", "GH_TOKEN", "TDEV_", "EVOLUTION_", "DEBUG", "LOG_LEVEL")


def installation(work: Path, moto_url: str, github: GitHubStandIn, http_url: str) -> dict:
    shutil.copytree(ROOT / "config", work / "config")
    (work / "home").mkdir()
    config = write_config(work / "mcp" / "claude.mcp.json", {
        "time": time_server(), "paged": script_server("paged_stdio"), "http": {"type": "http", "url": http_url}})
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB)}
    env.update(github.env(), TDEV_HISTORY_DIR=str(work / "history"), TDEV_CONFIG_DIR=str(work / "config"),
               TDEV_LOG_DIR=str(work / "logs"), TDEV_BACKUP_DIR=str(work / "backups"),
               TDEV_MCP_CONFIG=str(config), TDEV_MCP_LOG_DIR=str(work / "home" / ".mcp" / "logs"),
               HOME=str(work / "home"), AWS_ENDPOINT_URL=moto_url, AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1",
               AWS_EC2_METADATA_DISABLED="true")
    subprocess.run([sys.executable, "scripts/init_evolution.py"], cwd=ROOT, env=env, check=True, capture_output=True)
    seed_aws(env)
    return env


def seed_aws(env: dict) -> None:
    import boto3

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="us-east-1")
    endpoint = env["AWS_ENDPOINT_URL"]
    session.client("s3", endpoint_url=endpoint).create_bucket(Bucket="t-developer-backups")
    topic = session.client("sns", endpoint_url=endpoint).create_topic(Name="t-developer-notify-oncall")["TopicArn"]
    session.client("cloudwatch", endpoint_url=endpoint).put_metric_alarm(
        AlarmName="EvolutionFailure", MetricName="EvolutionSuccessRate", Namespace="TDeveloper", Statistic="Average",
        Period=3600, EvaluationPeriods=1, Threshold=70, ComparisonOperator="LessThanThreshold", AlarmActions=[topic])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--show", action="store_true", help="print every check of the last run")
    options = parser.parse_args()
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto.start()
    host, port = moto.get_host_and_port()
    github = GitHubStandIn().start()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-health-") as work:
        http = HttpServer(Path(work))
        try:
            env = installation(Path(work), f"http://{host}:{port}", github, http.url)
            for _ in range(options.runs):
                started = time.monotonic()
                result = subprocess.run([sys.executable, "scripts/health_check.py", "--full", "--json"], cwd=ROOT,
                                        env=env, capture_output=True, text=True, timeout=300)
                wall = time.monotonic() - started
                checks = json.loads(result.stdout)["checks"]
                slowest = max(checks, key=lambda c: c["duration_ms"])
                rows.append((wall, slowest["duration_ms"] / 1000, slowest["name"], len(checks), result.returncode))
        finally:
            http.stop()
            github.stop()
            moto.stop()
    if options.show:
        for check in checks:
            print(f"  {check['name']:<22} {check['status']:<8} {check['duration_ms']:>6} ms  {check['summary'][:90]}")
    for wall, slowest, name, count, code in rows:
        print(f"wall {wall:.2f} s  slowest check {name} {slowest:.2f} s  overhead {wall - slowest:.2f} s  "
              f"({count} checks, exit {code})")
    overhead = statistics.median(wall - slowest for wall, slowest, *_ in rows)
    print(f"median overhead over the slowest check: {overhead:.2f} s (target <= 0.5) "
          f"{'PASS' if overhead <= 0.5 else 'FAIL'}")
    return 0  # a figure, not a verdict: the run itself succeeded


if __name__ == "__main__":
    sys.exit(main())
