"""Operations across the agent registry: status, usage, restart, scale, stop and start (the commands'
printing and audit lines: lib/ops/agent_fleet.py).

Agents are queried concurrently (a thread pool) because each status needs several AWS
round trips. stop records each agent's capacity before it stops it, as the tag
tdev:pre-stop-capacity on the function or service (which survives a restore of the
store) and in the store; start restores from the tag, then removes it.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from lib import agents, log, timeparse
from lib.adapters import aws
from lib.agents.aws_base import PRE_STOP_TAG, AwsRuntime, decode_capacity, encode_capacity
from lib.errors import ToolError

AWS_RUNTIMES = {"lambda": ("lambda", "cloudwatch"), "ecs": ("ecs", "cloudwatch"),
                "agentcore": ("bedrock-agentcore-control",)}
MAX_WORKERS = 10  # botocore keeps 10 connections per client: more threads would only queue
HEALTH_TIMEOUT_SECONDS = 5

def select(name: str | None) -> list[dict]:
    """One agent by name (NotFound lists the known ones) or the whole registry."""
    return [agents.get(name)] if name else agents.registry()


def prepare(selected: list[dict], action: str) -> None:
    """Fail once when AWS agents meet missing credentials; make clients before threads share them."""
    services = {s for agent in selected for s in AWS_RUNTIMES.get(agent["runtime"], ())}
    if services:
        aws.require_credentials(action)
        for service in sorted(services):
            aws.client(service)


def for_each(func, items: list) -> list:
    """func over items in a thread pool, results in the order of items."""
    if len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(items))) as pool:
        return list(pool.map(func, items))


# ---- status ---------------------------------------------------------------------------------

def probe_health(url: str) -> str:
    import requests

    try:
        response = requests.get(url, timeout=HEALTH_TIMEOUT_SECONDS)
    except requests.RequestException as failure:
        return log.mask_secrets(f"unreachable: {type(failure).__name__}")
    verdict = "ok" if response.ok else "failing"
    return f"{response.status_code} {verdict} ({response.elapsed.total_seconds() * 1000:.0f} ms)"


def status_of(agent: dict) -> dict:
    row = {"name": agent["name"], "runtime": agent["runtime"], "state": "", "version": "", "capacity": "",
           "errors_last_hour": None, "health": "", "detail": "", "ok": True}
    try:
        row.update(agents.runtime(agent).status())
    except ToolError as failure:
        row.update(state="error", detail=str(failure), ok=False)
    if agent.get("health_url"):
        row["health"] = probe_health(agent["health_url"])
    return row


def status_all(selected: list[dict]) -> list[dict]:
    prepare(selected, "query the agents")
    return for_each(status_of, selected)


# ---- usage, restart, scale --------------------------------------------------------------------

def usage(agent: dict) -> list[dict]:
    runtime = agents.runtime(agent)
    if not isinstance(runtime, AwsRuntime):
        return []
    prepare([agent], f"measure {agent['name']}")
    return runtime.usage()


def restart(agent: dict, dry_run: bool) -> dict:
    runtime = agents.runtime(agent)
    if dry_run:
        return {"name": agent["name"], "runtime": agent["runtime"], "result": "would restart", "detail": ""}
    prepare([agent], f"restart {agent['name']}")
    detail = runtime.restart()
    return {"name": agent["name"], "runtime": agent["runtime"], "result": "restarted", "detail": detail}


def scale(agent: dict, instances: int, provisioned: bool, dry_run: bool) -> dict:
    runtime = agents.runtime(agent)
    prepare([agent], f"scale {agent['name']}")
    kind = "provisioned concurrency" if provisioned else {"lambda": "reserved concurrency",
                                                          "ecs": "desired count"}.get(agent["runtime"], "capacity")
    if dry_run:
        current = runtime.capacity()
        return {"name": agent["name"], "what": kind, "old": current, "new": instances, "result": "would scale"}
    old, new = runtime.scale(instances, provisioned)
    return {"name": agent["name"], "what": kind, "old": old, "new": new, "result": "scaled"}


# ---- stop and start ---------------------------------------------------------------------------

def meta_key(name: str) -> str:
    return f"agent-capacity:{name}"


class _Bulk:
    """Shared state of one stop_all/start_all run: the store (used under a lock) and dry run."""

    def __init__(self, store, dry_run: bool):
        self.store = store
        self.dry_run = dry_run
        self.lock = threading.Lock()

    def row(self, agent: dict, result: str, capacity=None, detail: str = "", ok: bool = True) -> dict:
        shown = encode_capacity(capacity) if isinstance(capacity, dict) else ""
        return {"name": agent["name"], "runtime": agent["runtime"], "result": result, "capacity": shown,
                "detail": detail, "ok": ok}

    def guarded(self, func, agent: dict) -> dict:
        try:
            return func(agent)
        except ToolError as failure:
            return self.row(agent, "failed", detail=str(failure), ok=False)

    def stop(self, agent: dict) -> dict:
        runtime = agents.runtime(agent)
        current = runtime.capacity()
        if current is None:
            return self.row(agent, "nothing to stop", detail=f"{agent['runtime']} runtime has no capacity to set")
        recorded = runtime.tags().get(PRE_STOP_TAG)
        if recorded and runtime.is_stopped(current):
            return self.row(agent, "already stopped", decode_capacity(recorded), "capacity before the stop kept")
        if self.dry_run:
            return self.row(agent, "would stop", current)
        runtime.set_tag(PRE_STOP_TAG, encode_capacity(current))
        with self.lock:
            self.store.set_meta(meta_key(agent["name"]), {"capacity": current, "stopped_at": timeparse.iso(),
                                                          "runtime": agent["runtime"]})
        runtime.stop()
        return self.row(agent, "stopped", current, "capacity before the stop recorded")

    def start(self, agent: dict) -> dict:
        runtime = agents.runtime(agent)
        current = runtime.capacity()
        if current is None:
            return self.row(agent, "nothing to start", detail=f"{agent['runtime']} runtime has no capacity to set")
        tag = runtime.tags().get(PRE_STOP_TAG)
        with self.lock:
            saved = self.store.get_meta(meta_key(agent["name"]))
        if tag:
            target, source = decode_capacity(tag), "tag"
        elif saved and runtime.is_stopped(current):
            target, source = saved["capacity"], "store (no tag)"
        else:
            if saved and not self.dry_run:
                with self.lock:
                    self.store.delete_meta(meta_key(agent["name"]))
            return self.row(agent, "not stopped", current, "no recorded stop; left as it is")
        if self.dry_run:
            return self.row(agent, "would start", target, f"from the {source}")
        runtime.start(target)
        if tag:
            runtime.remove_tag(PRE_STOP_TAG)
        with self.lock:
            self.store.delete_meta(meta_key(agent["name"]))
        return self.row(agent, "started", target, f"restored from the {source}")


def stop_all(selected: list[dict], store, dry_run: bool) -> list[dict]:
    prepare(selected, "stop the agents")
    bulk = _Bulk(store, dry_run)
    return for_each(lambda agent: bulk.guarded(bulk.stop, agent), selected)


def start_all(selected: list[dict], store, dry_run: bool) -> list[dict]:
    prepare(selected, "start the agents")
    bulk = _Bulk(store, dry_run)
    return for_each(lambda agent: bulk.guarded(bulk.start, agent), selected)
