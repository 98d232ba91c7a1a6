"""The habits every script shares through lib/cli.py and lib/log.py: -h, --version, quiet on
success off a terminal (cron), and log lines that carry their time."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

import lib
from lib import cli, log


def run(command: click.Command, *argv: str, monkeypatch) -> int:
    monkeypatch.setattr("sys.argv", ["job.py", *argv])
    with pytest.raises(SystemExit) as stop:
        cli.run(command)
    return stop.value.code


def job() -> click.Command:
    @click.command(help="A job cron runs.")
    @cli.verbose_option
    def main() -> int:
        click.echo("quiet" if cli.quiet() else "report")
        return 0

    return main


def test_dash_h_and_version_on_every_command(monkeypatch, capsys):
    assert run(job(), "-h", monkeypatch=monkeypatch) == 0
    assert "A job cron runs." in capsys.readouterr().out
    assert run(job(), "--version", monkeypatch=monkeypatch) == 0
    assert capsys.readouterr().out == f"job.py (T-Developer ops) {lib.__version__}\n"


def test_a_job_is_quiet_off_a_terminal_unless_verbose(monkeypatch, capsys):
    assert run(job(), monkeypatch=monkeypatch) == 0
    assert capsys.readouterr().out == "quiet\n"
    assert run(job(), "-v", monkeypatch=monkeypatch) == 0
    assert capsys.readouterr().out == "report\n"

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    assert run(job(), monkeypatch=monkeypatch) == 0
    assert terminal.getvalue() == "report\n"


def test_read_commands_are_never_quiet(monkeypatch, capsys):
    @click.command()
    def read() -> int:
        click.echo(f"quiet={cli.quiet()} wanted={cli.report_wanted()}")
        return 0

    assert run(read, monkeypatch=monkeypatch) == 0
    assert capsys.readouterr().out == "quiet=False wanted=True\n"
    assert not cli.quiet()  # outside any command too


def test_log_lines_start_with_iso_local_time_and_stay_masked(monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    log.setup()
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream)
    logging.getLogger("lib.test").info("pushed with token=abc123")
    line = stream.getvalue()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d INFO lib.test: pushed with token=\*\*\*$",
                    line.strip()), line


@pytest.mark.parametrize("flush", [True, False])
def test_a_check_whose_reader_left_keeps_its_exit_code(tdev, monkeypatch, flush):
    """`| head -1`: the pipe error comes at a flush inside the command or at the one on the way out."""
    from lib import checks

    reader, writer = os.pipe()
    os.close(reader)
    monkeypatch.setattr("sys.stdout", io.TextIOWrapper(io.BufferedWriter(io.FileIO(writer, "w"))))

    @click.command()
    def main() -> int:
        code = cli.conclude(checks.Report("HEALTH", checks.CRITICAL, [], "1 check"), notify_flag=False)
        print("HEALTH CRITICAL: store", flush=flush)
        return code

    monkeypatch.setattr("sys.argv", ["health_check.py"])
    with pytest.raises(SystemExit) as stop:
        cli.run(main, check=True)
    assert stop.value.code == 2
    print("after the run", flush=True)  # stdout now leads nowhere: no second error


def test_the_edges_load_nothing_a_command_does_not_ask_for():
    """lib.cli and lib.store load no heartbeat, notification, audit, lock or store backend until a command
    asks for one (issue 17: --help is as fast as click itself)."""
    probe = ("import sys, lib.cli, lib.store, lib.quality, lib.insight; "
             "print(' '.join(sorted(m for m in sys.modules if m.startswith(('lib.', 'boto', 'requests', 'radon')))))")
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parents[3],
                            capture_output=True, text=True, check=True).stdout.split()
    assert not {"lib.hooks.heartbeat", "lib.hooks.notify", "lib.audit", "lib.locks", "lib.store.sqlite",
                "lib.store.dynamodb", "lib.quality.measure", "lib.insight.metrics"} & set(loaded), loaded
    assert not [name for name in loaded if name.startswith(("boto", "requests", "radon"))]
