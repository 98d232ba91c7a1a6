"""The command conventions of DESIGN §6, shared by every script.

Scripts stay thin: click options, one call into lib/, and `cli.run(main)` which turns
expected failures into one `error:` line and the documented exit code. This module loads click
alone: logging, the check vocabulary and the paths load once a command runs, so that `--help`
costs little more than click itself (issue 17).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import click

import lib
from lib.errors import ToolError, UsageError

if TYPE_CHECKING:
    from pathlib import Path

    from lib import checks

_verdict: dict[str, int] = {}  # the exit code conclude() reached, for a run whose output pipe then closed


def audit(result: str, **details: Any) -> None:
    """The scripts' one call for the audit line (lib.audit), loaded by the commands that write one, not by --help."""
    from lib.audit import audit as write

    write(result, **details)


def lock(name: str) -> contextlib.AbstractContextManager[Path]:
    """And for the cron lock (lib.locks), loaded the same way."""
    from lib.locks import lock as hold

    return hold(name)


def _fail(message: str, code: int) -> int:
    """One line, whatever the message: a multi-line one (botocore validation) is folded."""
    from lib import log

    line = "; ".join(part.strip() for part in message.splitlines() if part.strip())
    click.echo(f"error: {log.mask_secrets(line)}", err=True)
    return code


def _habits(command: click.Command) -> None:
    """`-h` beside `--help` and `--version` on every script, added here so that no script repeats them."""
    command.context_settings.setdefault("help_option_names", ["-h", "--help"])
    if not any("--version" in param.opts for param in command.params):
        click.version_option(lib.__version__, "--version", message="%(prog)s (T-Developer ops) %(version)s")(command)


def run(command: click.Command, *, check: bool = False, makes_home: bool = False) -> None:
    """Run a click command and exit with DESIGN §6 codes (check commands: 0-3 plugin codes).

    Once the arguments parse, a TDEV_HOME that names no folder fails the command with one line before it
    does anything, unless the command is the one that makes the installation (makes_home). A cron job
    (TDEV_CRON_JOB) pings its heartbeat around the run: a check command succeeded when it could judge
    (OK, WARNING, CRITICAL), any other command when it exited 0.
    """
    _habits(command)
    beat = _heartbeat()
    beat.start()
    succeeded = False
    try:
        code = _invoke(command, check, makes_home)
        succeeded = code in (0, 1, 2) if check else code == 0
    finally:
        beat.finish(succeeded)
    sys.exit(code)


class _NoHeartbeat:
    """Not a cron job: nothing to ping."""

    def start(self) -> None:
        pass

    def finish(self, succeeded: bool) -> None:
        pass


def _heartbeat():
    """The heartbeat of the cron job TDEV_CRON_JOB names; without one, heartbeats (and HTTP) are not even loaded."""
    if os.environ.get("TDEV_CRON_JOB", "").strip():
        from lib import log
        from lib.hooks import heartbeat

        log.setup()  # before the first ping, so that what HTTP logs is masked (set up again, the same, per command)

        return heartbeat.for_this_run(info)
    return _NoHeartbeat()


def _invoke(command: click.Command, check: bool, makes_home: bool) -> int:
    """The command's exit code, with every expected failure turned into one `error:` line."""
    prog = os.path.basename(sys.argv[0])
    try:
        with command.make_context(prog, sys.argv[1:]) as context:  # click answers --help here
            from lib import log, paths

            log.setup()
            if not makes_home:
                paths.root()
            result = command.invoke(context)
        code = result if isinstance(result, int) else 0
    except click.exceptions.Exit as stop:
        code = stop.exit_code
    except click.UsageError as bad:
        code = _fail(f"{bad.format_message()} (see {prog} --help)", _unknown() if check else 2)
    except ToolError as failure:
        from lib import log

        if log.debug_enabled():
            log.print_exception(failure)
        code = _fail(str(failure), failure.check_exit_code if check else failure.exit_code)
    except (KeyboardInterrupt, click.Abort):
        code = _fail("interrupted", 130)
    except BrokenPipeError:  # `| head -1`: the reader left; a check's result still decides the exit code
        code = _pipe_closed()
    except Exception as crash:  # the last line of defence: one line, after the (masked) traceback under DEBUG
        from lib import log

        debug = log.debug_enabled()
        if debug:
            log.print_exception(crash)
        code = _fail(f"unexpected {type(crash).__name__}: {crash}"
                     + ("" if debug else " (run again with DEBUG=true for the traceback)"), _unknown() if check else 1)
    try:
        sys.stdout.flush()  # what print() left buffered: a reader gone by now must not make the exit code 120
    except BrokenPipeError:
        _pipe_closed()
    return code


def _unknown() -> int:
    """A check command's exit code when it could not judge (3, the plugin convention)."""
    from lib import checks

    return checks.EXIT_CODES[checks.UNKNOWN]


def _pipe_closed() -> int:
    """Point stdout at /dev/null so that no later write or the exit's flush fails again; the exit code a
    check command had reached before its output was cut (conclude records it), else 0 (DESIGN §9)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return _verdict.get("code", 0)


# ---- options shared by many scripts -------------------------------------------------

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
notify_option = click.option(
    "--notify", is_flag=True,
    help="Send the result to config/notify.yaml's routes: WARNING to notify-team, CRITICAL to notify-oncall; "
         "OK again resolves what was opened.")
dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Show what would change and change nothing (also EVOLUTION_DRY_RUN=true)."
)


_VERBOSE = "tdev.verbose"


def _remember_verbose(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    ctx.meta[_VERBOSE] = value
    return value


#: For jobs that cron runs: it marks the command as quiet on success off a terminal (see quiet()).
verbose_option = click.option(
    "-v", "--verbose", is_flag=True, expose_value=False, callback=_remember_verbose,
    help="Print the report even when stdout is not a terminal (under cron a run that went well prints nothing).",
)


def quiet() -> bool:
    """Cron mails any output: a job that takes --verbose prints nothing off a terminal unless asked.

    Only commands with verbose_option are ever quiet; read and check commands always print, since
    their output is what a pipe or a monitoring system reads.
    """
    ctx = click.get_current_context(silent=True)
    if ctx is None or _VERBOSE not in ctx.meta:
        return False
    return not ctx.meta[_VERBOSE] and not sys.stdout.isatty()


def report_wanted(important: bool = False) -> bool:
    """Print a job's report: on a terminal, with --verbose, or when it matters anyway (a failure, a dry run)."""
    return important or not quiet()


def is_dry_run(flag: bool) -> bool:
    return flag or os.environ.get("EVOLUTION_DRY_RUN", "").strip().lower() in ("1", "true", "yes")


# ---- output ---------------------------------------------------------------------------


def print_json(document: Any) -> None:
    import json  # only the commands that print JSON pay for it, not --help

    from lib import log

    click.echo(json.dumps(log.masked(document), indent=2, sort_keys=False, default=str))


def print_table(rows: Iterable[dict], columns: list[tuple[str, str]], empty: str = "nothing to show") -> None:
    """Rows of dicts as a table; columns are (key, header) pairs."""
    rows = list(rows)
    if not rows:
        click.echo(empty, err=True)
        return
    from tabulate import tabulate

    from lib import log

    body = [["" if row.get(key) is None else log.masked(row.get(key)) for key, _ in columns] for row in rows]
    click.echo(tabulate(body, headers=[header for _, header in columns], tablefmt="simple"))


def emit(document: Any, as_json: bool, rows: Iterable[dict] | None = None,
         columns: list[tuple[str, str]] | None = None, empty: str = "nothing to show") -> None:
    """--json prints the document; otherwise the rows (the document itself when a list) as a table."""
    if as_json:
        print_json(document)
    else:
        print_table(document if rows is None else rows, columns or [], empty=empty)


def info(message: str) -> None:
    """A diagnostic for the operator, on stderr."""
    from lib import log

    click.echo(log.mask_secrets(message), err=True)


def note(message: str) -> None:
    """What a job did when all went well: on stderr, and not under cron (see quiet())."""
    if not quiet():
        info(message)


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


@contextlib.contextmanager
def progress(items: list, label: str) -> Iterator[Iterable]:
    """A progress bar on a terminal; silent under cron."""
    if sys.stderr.isatty():
        with click.progressbar(items, label=label, file=sys.stderr) as bar:
            yield bar
    else:
        yield items


@contextlib.contextmanager
def meter(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A byte progress bar on a terminal (restore, S3 transfers), yielding advance(n); silent under cron."""
    if sys.stderr.isatty() and total:
        with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
            yield bar.update
    else:
        yield lambda count: None


def confirm(question: str, assume_yes: bool, flag: str = "--confirm") -> None:
    """Ask on a terminal; without one, refuse unless the operator passed the flag."""
    if assume_yes:
        return
    if interactive():
        if click.confirm(question, default=False, err=True):
            return
        raise ToolError("not confirmed; nothing was changed")
    raise UsageError(f"refusing without {flag}: {question}", f"pass {flag} to go ahead")


def report_checks(results: list[checks.Result], as_json: bool, title: str, *, context: str = "",
                  timings: bool = False, notify_flag: bool = False, mode: str | None = None) -> int:
    """Notify, then print the plugin line and a table (or the JSON of DESIGN §8); return the plugin exit code.

    context: what was checked, after the counts; timings: the checks' durations are the perfdata;
    mode: the schedule's own incident (see conclude).
    """
    from lib import checks

    report = checks.Report.of(results, title, context, timings)
    code = conclude(report, notify_flag, mode)
    if as_json:
        print_json({"status": report.status, "checks": [r.as_json() for r in results]})
    else:
        click.echo(report.first_line())
        print_table(
            [{**r.as_json(), "status": r.status.upper(), "ms": r.duration_ms} for r in results],
            [("name", "CHECK"), ("area", "AREA"), ("status", "STATUS"), ("summary", "SUMMARY"), ("ms", "MS")],
        )
    return code


def conclude(report: checks.Report, notify_flag: bool, mode: str | None = None) -> int:
    """A check command's verdict, before it prints: with --notify, send the report; the exit code is the
    report's, always, and is kept for a run whose output pipe closes while it prints (DESIGN §9).

    mode names a schedule of the command with its own incident (health_check --full: full).
    """
    _verdict["code"] = report.exit_code
    if notify_flag:
        from lib import log
        from lib.hooks import notify  # loaded when asked: --notify

        try:
            problems = notify.send(command_name(), report, mode)
        except ToolError as failure:  # notify.yaml or the state file: reported, never the check's result
            problems = [f"warning: --notify: {failure}"]
        except Exception as crash:  # a fault in notifying must not turn what the check found into UNKNOWN
            if log.debug_enabled():
                raise
            problems = [f"warning: --notify: unexpected {type(crash).__name__}: {crash}"]
        for line in problems:
            info(log.mask_secrets(line))
    return report.exit_code


def command_name() -> str:
    """The running command as the dedup key names it: health_check, mcp.test."""
    context = click.get_current_context(silent=True)
    shown = (context.find_root().info_name if context else None) or os.path.basename(sys.argv[0])
    return shown.split()[-1].removesuffix(".py")
