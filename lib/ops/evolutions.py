"""Start an evolution (and with --monitor follow it to the end) and stop one: what run_evolution.py
and stop_evolution.py do."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from lib import cli, config, paths, procs
from lib.errors import Conflict, ToolError, UsageError
from lib.evolution import executors, lifecycle, stuck
from lib.insight import history
from lib.ops import cleanup
from lib.store import ACTIVE, FINAL, Store, open_store

#: The final statuses under which run_evolution.py --monitor exits 0: an evolution that found nothing to
#: change did its job (DESIGN §5: unchanged is final, and no failure).
OK_ENDINGS = ("succeeded", "unchanged")

def _log_path(evolution_id: str) -> Path:
    return paths.evolution_dir(evolution_id) / "evolution.log"


def start(target: str | None, cycles: int | None, focus: str | None, *, force: bool, dry_run: bool,
          monitor: bool, attempts: int | None = None, budget_usd: float | None = None,
          agents_file: str | None = None) -> int:
    """Check, create and start detached, print the id and log; with monitor follow it. The exit code:
    0 started (or, with monitor, succeeded or unchanged: nothing went wrong), 1 ended otherwise.
    agents_file (--agents) replaces config/agents.yaml for this evolution, checked before anything starts."""
    from lib.health import preflight  # late: stop_evolution.py shares this module and runs no checks

    target, cycles, focus = lifecycle.defaults(target, cycles, focus)
    options = run_options(attempts, budget_usd, agents_file)
    path = lifecycle.resolve_target(target)
    store = open_store(create=True)
    _take_over_dead(store, path, force)
    results, blocking = preflight.gate(str(path), force, focus)
    for result in results:
        if result.status != "ok":
            cli.info(f"pre-check {result.name}: {result.status.upper()}: {result.summary}")
    if blocking:
        raise ToolError("pre-evolution checks failed: " + "; ".join(f"{r.name}: {r.summary}" for r in blocking),
                        "fix them (--force skips only the checks that are not about safety)" if force else
                        "fix them, or pass --force to skip the checks that are not about safety")
    record = lifecycle.create(store, path, focus, cycles, dry_run, **options)
    pid = lifecycle.start_detached(store, record["id"])
    cli.audit("started", evolution_id=record["id"], target=str(path), focus=focus, cycles=cycles, pid=pid,
              budget_usd=options["budget_usd"], agents=str(options["agents_file"] or "") or None)
    click.echo(f"{record['id']} started (pid {pid}); log: {_log_path(record['id'])}")
    if not monitor:
        return 0
    final = follow(store, record["id"])
    click.echo(f"{final['id']} {final['status']}" + (f": {final['error']}" if final.get("error") else ""))
    return 0 if final["status"] in OK_ENDINGS else 1


def run_options(attempts: int | None, budget_usd: float | None, agents_file: str | None) -> dict:
    """--attempts, --budget-usd and --agents checked before anything starts: lifecycle.create's options."""
    lifecycle.max_attempts(attempts)
    return {"attempts": attempts, "budget_usd": _budget(budget_usd), "agents_file": _agents_registry(agents_file)}


def _agents_registry(agents_file: str | None) -> Path | None:
    """The --agents file, resolved and loaded with the checks of agents.yaml; this process then reads it."""
    if not agents_file:
        return None
    path = Path(agents_file).expanduser().resolve()
    if not path.is_file():
        raise UsageError(f"--agents {agents_file}: no such file", "give a registry of the shape of config/agents.yaml")
    config.use_agents_file(path)
    config.load("agents")
    return path


def _budget(budget_usd: float | None) -> float | None:
    """--budget-usd, else evolution.max_cost_usd; None: no cap."""
    if budget_usd is None:
        return config.settings()["evolution"]["max_cost_usd"]
    if not budget_usd > 0 or budget_usd == float("inf"):
        raise UsageError(f"--budget-usd must be a positive amount, got {budget_usd:g}")
    return budget_usd


def _take_over_dead(store: Store, path: Path, force: bool) -> None:
    """The target's active evolution, if any: one whose runner may live refuses the start (with its id); one
    whose runner is provably dead (gone from this host) is cleaned up first under force, else named with the
    clean-up command."""
    for listed in store.list_evolutions(statuses=ACTIVE, target=str(path)):
        record = store.get_evolution(listed["id"]) or listed
        if record["status"] not in ACTIVE:
            continue
        try:
            detail = stuck.runner_gone(record)
        except Conflict as alive:
            raise Conflict(f"target {path} already has an active evolution: {alive.message}", alive.hint) from None
        command = f"python scripts/cleanup.py --evolution {record['id']}"
        if not force:
            raise Conflict(f"target {path} has evolution {record['id']} marked {record['status']}, but its runner is "
                           f"dead ({detail})", f"clean it up: {command}, then start again (--force does both)")
        if lifecycle.runner_state(record)[0] == procs.REMOTE:  # silent, but only that host can prove it dead
            raise Conflict(f"target {path} has evolution {record['id']} whose runner is silent ({detail}); "
                           "it cannot be proven dead from this host", f"if it is, clean it up: {command}, then start "
                           "again")
        outcome = cleanup.execute(cleanup.plan_evolution(store, record["id"]), dry_run=False)
        cli.audit("failed" if outcome["failed"] else "ok", evolution_id=record["id"], took_over=str(path),
                  done=[item["action"] for item in outcome["items"] if item["result"] == "done"])
        if outcome["failed"]:
            failed = "; ".join(f"{i['action']} {i['what']}: {i['result']}" for i in outcome["items"]
                               if i["result"].startswith("failed"))
            raise ToolError(f"could not clean up {record['id']}, whose runner is dead: {failed}",
                            f"fix that and run {command}")
        cli.info(f"took over {path}: evolution {record['id']} (runner dead: {detail}) cleaned up: "
                 + ", ".join(f"{item['action']} {item['what']}" for item in outcome["items"]))


def _status_line(record: dict) -> str:
    return (f"[{record['status']}] cycle {record.get('current_cycle') or 0}/{record.get('cycles')} "
            f"{record.get('current_phase') or ''} · {history.elapsed(record)} · ${record.get('cost_usd') or 0:.2f}")


def follow(store: Store, evolution_id: str, poll: float = 0.3) -> dict:
    """--monitor: print new log lines (and a live status line on a terminal) until the evolution is final;
    Ctrl-C asks for a graceful stop, a second one stops watching."""
    log = _log_path(evolution_id)
    terminal = sys.stderr.isatty()
    offset, stop_asked = 0, False
    record = store.evolution_or_fail(evolution_id)
    while True:
        try:
            if log.exists():
                with open(log, encoding="utf-8", errors="replace") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
                    offset = handle.tell()
                if chunk:
                    if terminal:
                        click.echo("\r\033[K", nl=False, err=True)
                    click.echo(chunk, nl=False)
            record = lifecycle.settle_if_dead(store, store.evolution_or_fail(evolution_id))
            if record["status"] in FINAL:
                if terminal:
                    click.echo("\r\033[K", nl=False, err=True)
                return record
            if terminal:
                click.echo("\r\033[K" + _status_line(record), nl=False, err=True)
            time.sleep(poll)
        except KeyboardInterrupt:
            if stop_asked:
                click.echo(f"\nleaving {evolution_id} to finish on its own "
                           f"(python scripts/stop_evolution.py --id {evolution_id} --force ends it)", err=True)
                raise
            stop_asked = True
            lifecycle.request_stop(store, evolution_id)
            click.echo(f"\ngraceful stop requested for {evolution_id}: it stops at the next phase boundary "
                       "(Ctrl-C again to stop watching)", err=True)


def stop(evolution_id: str, force: bool, timeout: float) -> int:
    """force ends the process group now; otherwise ask for a stop at the next phase boundary and wait up
    to timeout. The exit code: 0 final (or already was), 1 still running at the timeout (the request stays).
    When another operator (or the runner itself) ends the evolution first, say how it ended."""
    store = open_store()
    before = store.evolution_or_fail(evolution_id)
    if before["status"] in FINAL:
        click.echo(f"{evolution_id} is already {_ended(before)}; nothing to stop")
        return 0
    clean = f"clean up: python scripts/cleanup.py --evolution {evolution_id}"
    if force:
        done = executors.force_stop(store, evolution_id)
        record = done.record
        cli.audit(record["status"], evolution_id=evolution_id, mode="force", outcome=done.outcome)
        executors.fill_quietly(store)  # its slot goes to a waiting evolution (DESIGN §10)
        if done.outcome == "killed" and record.get("executor") == executors.STEPFUNCTIONS:
            click.echo(f"{evolution_id} killed ({done.detail}: ECS stops its task)")
        elif done.outcome == "killed":
            click.echo(f"{evolution_id} killed (process group {record.get('pid')} ended); {clean}")
        elif done.outcome == "gone":
            click.echo(f"{evolution_id} marked killed: its runner was already gone ({done.detail}); no process "
                       f"was signalled; {clean}")
        else:
            click.echo(f"{evolution_id} was ended meanwhile, not by this stop: {_ended(record)}")
        return 0
    requested = lifecycle.request_stop(store, evolution_id)
    if requested["status"] not in FINAL:
        cli.info(f"graceful stop requested; waiting up to {timeout:g}s for {evolution_id}")
    record = lifecycle.wait_final(store, evolution_id, timeout)
    cli.audit(record["status"], evolution_id=evolution_id, mode="graceful")
    if record["status"] == "stopped":
        click.echo(f"{evolution_id} stopped" + (f" ({record['error']})" if record.get("error") else ""))
        return 0
    if record["status"] in FINAL:
        click.echo(f"{evolution_id} ended before the stop took effect: {_ended(record)}"
                   + (f"; {clean}" if record["status"] == "killed" else ""))
        return 0
    click.echo(f"{evolution_id} still {record['status']} after {timeout:g}s; the stop request stays. "
               f"To end it now: python scripts/stop_evolution.py --id {evolution_id} --force")
    return 1


def _ended(record: dict) -> str:
    return record["status"] + (f" ({record['error']})" if record.get("error") else "")
