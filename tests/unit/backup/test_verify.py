"""lib/backup/verify.py: an archive read end to end against its own manifest, its store and config checked;
the row counts and config checks on their own; the outcome kept for the health check."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from backup_helpers import flip_byte

from lib.backup import jobs, verify
from lib.errors import ToolError
from lib.evolution import lifecycle


@pytest.fixture
def backup(store, git_repo) -> Path:
    lifecycle.create(store, git_repo / "packages" / "agents", "quality", 1, True)
    return Path(jobs.create("full", date(2026, 1, 15), s3=False, prune=False)["archive"])


def statuses(results) -> dict:
    return {result.name: result.status for result in results}


def test_a_sound_archive_verifies_with_its_store_rows_and_config(backup):
    results, target = verify.verify_archive(backup)
    assert target == str(backup)
    assert statuses(results) == {"checksums": "ok", "store": "ok", "config": "ok"}
    store = next(result for result in results if result.name == "store")
    assert "1 evolutions" in store.summary


def test_a_damaged_archive_is_critical(backup):
    flip_byte(backup, backup.stat().st_size // 2)
    results, _ = verify.verify_archive(backup)
    assert statuses(results) == {"checksums": "critical"}


def test_a_missing_archive_is_refused(tmp_path, tdev):
    with pytest.raises(ToolError, match="no such archive"):
        verify.verify_archive(tmp_path / "gone.tar.zst")


def test_rows_short_of_the_backup_are_critical_and_exact_mode_wants_the_same_count():
    assert verify.compare_counts({"evolutions": 3}, {"evolutions": 2}, False, 0).status == "ok"
    assert verify.compare_counts({"evolutions": 3}, {"evolutions": 2}, True, 0).status == "critical"
    short = verify.compare_counts({"evolutions": 1}, {"evolutions": 2, "tasks": 1}, False, 0)
    assert (short.status, short.summary) == ("critical", "rows missing against the backup: evolutions 1 < 2, "
                                                         "tasks 0 < 1")


def test_config_files_that_do_not_load_are_named(tmp_path):
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "gates.yaml").write_text("gates:\n  docstring: {threshold: 500, direction: min}\n")
    (folder / "other.yaml").write_text("a: [\n")
    mcp = tmp_path / "claude.mcp.json"
    mcp.write_text("{not json")
    result = verify.check_config_files(folder, mcp, "config/")
    assert result.status == "critical"
    assert "config/gates.yaml: " in result.summary and "config/other.yaml: " in result.summary
    assert "MCP config claude.mcp.json: not JSON" in result.summary
    (folder / "gates.yaml").write_text("gates: {}\n")
    (folder / "other.yaml").write_text("a: 1\n")
    mcp.write_text("{}")
    assert verify.check_config_files(folder, mcp, "config/").summary == "3 config files load"


def test_the_outcome_is_kept_for_the_health_check(backup, store):
    results, target = verify.run(backup)
    kept = store.get_meta("last-verify")
    assert (kept["status"], kept["mode"], kept["target"]) == ("ok", "archive", target)
    assert kept["summary"] == "; ".join(f"{result.name} ok" for result in results)
