"""The executors' commands (DESIGN §10): setup_executor.py, and run_evolution.py with --executor stepfunctions
or --targets-file (many evolutions, at most executor.max_concurrent running, the rest waiting as pending)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from lib import cli, config
from lib.adapters import stepfunctions as sfn
from lib.errors import Conflict, ToolError, UsageError
from lib.evolution import executors, lifecycle
from lib.health import preflight
from lib.ops import evolutions
from lib.ops.evolutions import OK_ENDINGS
from lib.store import ACTIVE, FINAL, Store, open_store
from lib.store.dynamodb import table_name

# ---- setup_executor.py ---------------------------------------------------------------------------------

def setup(dry_run: bool) -> int:
    """Create or update the state machine (idempotent); --dry-run prints the definition. The cluster, task
    definition, subnets and security groups must exist: one `error:` line each, exit 1, nothing written."""
    settings = config.settings()["executor"]
    document = sfn.definition(settings, table_name())
    if dry_run:
        cli.print_json(document)
        cli.info(f"dry run: state machine {settings['state_machine']} not written")
        return 0
    problems = sfn.check_resources(settings)
    if not settings.get("role_arn"):
        problems.append("settings executor.role_arn is not set: the state machine needs a role that may run the "
                        "task (ecs:RunTask, ecs:StopTask, ecs:DescribeTasks, iam:PassRole, events:* for .sync)")
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        cli.audit("failed", state_machine=settings["state_machine"], problems=len(problems))
        return 1
    found = sfn.find_state_machine(settings["state_machine"])
    if not found:
        arn = sfn.create_state_machine(settings["state_machine"], document, settings["role_arn"])
        outcome = "created"
    elif json.loads(found["definition"]) == document and found.get("roleArn") == settings["role_arn"]:
        arn, outcome = found["stateMachineArn"], "unchanged"
    else:
        arn, outcome = found["stateMachineArn"], "updated"
        sfn.update_state_machine(arn, document, settings["role_arn"])
    cli.audit(outcome, state_machine=arn)
    click.echo(f"state machine {settings['state_machine']} {outcome}: {arn}")
    return 0


# ---- run_evolution.py: many evolutions, or one elsewhere ------------------------------------------------

def read_targets(path: Path) -> list[Path]:
    """One target per line: `path` or `repo:path` (the repository's checkout, then the target inside it), relative
    to the current folder; blank lines and # comments are skipped. Every line must name a folder in a git
    repository (UsageError naming the line otherwise), and no target may appear twice."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as failure:
        raise UsageError(f"cannot read the targets file {path}: {failure}") from None
    targets: list[Path] = []
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        repo, _, inside = line.partition(":") if ":" in line else ("", "", line)
        candidate = Path(repo) / inside if repo else Path(inside)
        try:
            resolved = lifecycle.resolve_target(str(candidate))
        except ToolError as failure:
            raise UsageError(f"{path}:{number}: {line!r}: {failure.message}") from None
        if resolved in targets:
            raise UsageError(f"{path}:{number}: {line!r} names {resolved} a second time",
                             "one evolution per target: remove the repeated line")
        targets.append(resolved)
    if not targets:
        raise UsageError(f"the targets file {path} names no target")
    return targets


def start(targets_file: Path | None, target: str | None, cycles: int | None, focus: str | None, *, executor: str,
          force: bool, dry_run: bool, monitor: bool, attempts: int | None = None,
          budget_usd: float | None = None, agents_file: str | None = None) -> int:
    """Create one pending evolution per target, start as many as there are free slots (the rest wait), print
    each id and where it runs. All targets are checked before any is created. With monitor, follow them all."""
    default_target, cycles, focus = lifecycle.defaults(target, cycles, focus)
    options = evolutions.run_options(attempts, budget_usd, agents_file)
    paths = read_targets(targets_file) if targets_file else [lifecycle.resolve_target(default_target)]
    store = open_store(create=True)
    if executor == executors.STEPFUNCTIONS:
        sfn.state_machine_arn(config.settings()["executor"]["state_machine"])  # refused before anything is made
    origins = {}
    for path in paths:
        busy = store.list_evolutions(statuses=ACTIVE, target=str(path))
        if busy:
            raise Conflict(f"target {path} already has an active evolution {busy[0]['id']}; nothing was started",
                           f"wait for it, or stop it: python scripts/stop_evolution.py --id {busy[0]['id']} --graceful")
        origins[path] = executors.origin(path)
        if executor == executors.STEPFUNCTIONS and not origins[path]["remote_url"]:
            raise UsageError(f"target {path} is in a repository without an origin remote; a task elsewhere cannot "
                             "clone it", "add the remote (git remote add origin URL) and push")
        _, blocking = preflight.gate(str(path), force, focus)
        if blocking:
            raise ToolError(f"pre-evolution checks failed for {path}: "
                            + "; ".join(f"{r.name}: {r.summary}" for r in blocking),
                            "fix them, or pass --force to skip the checks that are not about safety")
    records = [lifecycle.create(store, path, focus, cycles, dry_run, executor=executor, **options, **origins[path])
               for path in paths]
    try:
        started = dict(executors.fill(store))
    except ToolError as failure:
        for record in records:
            click.echo(f"{record['id']} {record['target']}: waiting (pending)")
        cli.audit("failed", executor=executor, evolutions=[r["id"] for r in records], error=failure.message)
        raise ToolError(f"{len(records)} evolution(s) recorded but none could be started: {failure.message}",
                        "they start when a slot is filled next (an evolution ending, the next run_evolution.py); "
                        "or stop them: python scripts/stop_evolution.py --id <id>") from None
    for record in records:
        where = started.get(record["id"])
        click.echo(f"{record['id']} {record['target']}: " + (f"started ({where})" if where else
                                                             "waiting for a free slot (pending)"))
    cli.audit("started", executor=executor, evolutions=[r["id"] for r in records], started=len(started),
              max_concurrent=executors.max_concurrent())
    if not monitor:
        return 0
    finals = follow(store, [r["id"] for r in records])
    for record in finals:
        click.echo(f"{record['id']} {record['status']}" + (f": {record['error']}" if record.get("error") else ""))
    return 0 if all(r["status"] in OK_ENDINGS for r in finals) else 1


def follow(store: Store, ids: list[str], poll: float = 1.0) -> list[dict]:
    """--monitor for runners elsewhere: one line per change of status, cycle or phase, and the runner's log
    lines from its task's CloudWatch log stream when there is one evolution and its stream can be found.
    Ctrl-C asks every unfinished one for a graceful stop; a second Ctrl-C stops watching."""
    seen: dict[str, tuple] = {}
    stream = _LogTail(ids[0]) if len(ids) == 1 else None
    stop_asked = False
    while True:
        try:
            records = [store.evolution_or_fail(i) for i in ids]
            for record in records:
                shape = (record["status"], record.get("current_cycle"), record.get("current_phase"))
                if seen.get(record["id"]) != shape:
                    seen[record["id"]] = shape
                    click.echo(f"{record['id']} [{record['status']}] cycle {record.get('current_cycle') or 0}/"
                               f"{record.get('cycles')} {record.get('current_phase') or ''}".rstrip())
            if stream:
                for line in stream.read(records[0]):
                    click.echo(line)
            if all(r["status"] in FINAL for r in records):
                if stream:
                    for line in stream.drain(records[0]):
                        click.echo(line)
                return records
            time.sleep(poll)
        except KeyboardInterrupt:
            if stop_asked:
                raise
            stop_asked = True
            for evolution_id in ids:
                lifecycle.request_stop(store, evolution_id)
            click.echo("\ngraceful stop requested; Ctrl-C again to stop watching", err=True)


class _LogTail:
    """The runner's CloudWatch log stream, once its execution has started a task whose definition logs there."""

    #: how long the monitor waits, once the evolution is final, for the runner's last line to be shipped
    DRAIN_SECONDS = 15.0

    def __init__(self, evolution_id: str):
        self.evolution_id = evolution_id
        self.where: tuple[str, str] | None = None
        self.token: str | None = None
        self.given_up = False

    def read(self, record: dict) -> list[str]:
        if self.given_up or record.get("executor") != executors.STEPFUNCTIONS or not record.get("execution_arn"):
            return []
        try:
            if self.where is None:
                task = sfn.task_arn(record["execution_arn"])
                if not task:
                    return []
                self.where = sfn.log_stream(task, config.settings()["executor"])
                if self.where is None:
                    self.given_up = True
                    cli.info("the runner's task definition has no awslogs configuration: following the store only")
                    return []
            lines, self.token = sfn.log_events(*self.where, self.token)
            return lines
        except ToolError as failure:
            self.given_up = True
            cli.info(f"cannot read the runner's log stream ({failure}); following the store only")
            return []

    def drain(self, record: dict) -> list[str]:
        """The stream's remaining lines up to the runner's last one (`evolution <status>`): log shipping lags the
        store, so wait for it, at most DRAIN_SECONDS."""
        lines: list[str] = []
        deadline = time.monotonic() + self.DRAIN_SECONDS
        while self.where is not None and not self.given_up:
            lines += self.read(record)
            if any(f"evolution {record['status']}" in line for line in lines) or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        return lines
