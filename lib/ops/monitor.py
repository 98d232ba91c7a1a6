"""--monitor: follow an evolution's log and progress until it is final."""

from __future__ import annotations

import sys
import time

import click

from lib import evolution, paths
from lib.insight import history
from lib.store import FINAL, Store


def _status_line(record: dict) -> str:
    return (f"[{record['status']}] cycle {record.get('current_cycle') or 0}/{record.get('cycles')} "
            f"{record.get('current_phase') or ''} · {history.elapsed(record)} · ${record.get('cost_usd') or 0:.2f}")


def follow(store: Store, evolution_id: str, poll: float = 0.3) -> dict:
    """Print new log lines (and a live status line on a terminal); Ctrl-C asks for a graceful stop."""
    log_path = paths.evolution_dir(evolution_id) / "evolution.log"
    terminal = sys.stderr.isatty()
    offset, stop_asked = 0, False
    record = store.evolution_or_fail(evolution_id)
    while True:
        try:
            if log_path.exists():
                with open(log_path, encoding="utf-8", errors="replace") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
                    offset = handle.tell()
                if chunk:
                    if terminal:
                        click.echo("\r\033[K", nl=False, err=True)
                    click.echo(chunk, nl=False)
            record = store.evolution_or_fail(evolution_id)
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
            evolution.request_stop(store, evolution_id)
            click.echo(f"\ngraceful stop requested for {evolution_id}: it stops at the next phase boundary "
                       "(Ctrl-C again to stop watching)", err=True)
