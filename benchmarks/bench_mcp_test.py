"""Figure of issue 4: `python -m mcp.test all` with five servers takes at most 1.5 times the
slowest single server, because the servers are tested concurrently.

Five real servers, all on this machine: mcp-server-time twice (PyPI), the hand-written paged
stdio server, and the SDK's Streamable HTTP server in SSE and in JSON mode (started here).
Each configuration runs as an operator would (`python -m mcp.test NAME`, a subprocess);
the median of --runs runs is compared.

Usage:
    python benchmarks/bench_mcp_test.py [--runs 5]
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
sys.path.insert(0, str(ROOT / "tests" / "support"))

from mcp_servers.helpers import HttpServer, script_server, time_server, write_config  # noqa: E402


def timed(argv: list[str], env: dict) -> tuple[float, dict]:
    started = time.monotonic()
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    return elapsed, json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mcp-") as work:
        work = Path(work)
        servers = [HttpServer(work), HttpServer(work, "--json")]
        try:
            config = write_config(work / "claude.mcp.json", {
                "time": time_server(),
                "time-utc": {**time_server(), "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]},
                "paged": script_server("paged_stdio"),
                "http-sse": {"type": "http", "url": servers[0].url},
                "http-json": {"type": "http", "url": servers[1].url},
            })
            env = {**os.environ, "TDEV_MCP_CONFIG": str(config), "TDEV_MCP_LOG_DIR": str(work / "logs"),
                   "HOME": str(work)}
            names = ["time", "time-utc", "paged", "http-sse", "http-json"]
            single: dict[str, list[float]] = {name: [] for name in names}
            together: list[float] = []
            for _ in range(options.runs):
                for name in names:
                    elapsed, document = timed([sys.executable, "-m", "mcp.test", name, "--json"], env)
                    assert document["servers"][0]["status"] == "ok", document
                    single[name].append(elapsed)
                elapsed, document = timed([sys.executable, "-m", "mcp.test", "all", "--json"], env)
                assert all(row["status"] == "ok" for row in document["servers"]), document
                together.append(elapsed)
        finally:
            for server in servers:
                server.stop()
    medians = {name: statistics.median(times) for name, times in single.items()}
    slowest_name = max(medians, key=medians.get)
    all_median = statistics.median(together)
    ratio = all_median / medians[slowest_name]
    for name, value in medians.items():
        print(f"single {name:<10} median {value:.2f} s")
    print(f"all five          median {all_median:.2f} s")
    print(f"ratio all / slowest single ({slowest_name}): {ratio:.2f} (target <= 1.5) "
          f"{'PASS' if ratio <= 1.5 else 'FAIL'}")
    return 0  # a figure, not a verdict: the run itself succeeded


if __name__ == "__main__":
    sys.exit(main())
