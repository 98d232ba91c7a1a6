"""lib/backup/jobs.py: making a backup of a real installation (in process, no S3): the archive with its
manifest and store, the dry run that writes nothing, the refusal to archive a history whose store is lost."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from lib.archives import archive
from lib.backup import jobs
from lib.evolution import lifecycle

DAY = date(2026, 1, 15)


@pytest.fixture
def evolution(store, git_repo) -> dict:
    return lifecycle.create(store, git_repo / "packages" / "agents", "quality", 1, True)


def test_a_full_backup_holds_the_store_the_config_and_a_manifest(tdev, evolution):
    result = jobs.create("full", DAY, s3=False, prune=False)
    path = Path(result["archive"])
    assert path.is_file() and archive.sidecar_path(path).is_file()
    assert path.parent.parent == tdev.backup_dir / "full"
    assert result["store"]["counts"]["evolutions"] == 1
    assert result["s3"] == {"status": "disabled", "note": "no off-site copy (--no-s3)"}
    members = archive.scan(path)["files"]
    names = [member["path"] for member in members]
    assert any(name.startswith("config/settings.yaml") for name in names)
    assert result["files"] == len(members) and result["bytes_out"] == path.stat().st_size


def test_a_dry_run_writes_nothing_and_previews_the_same_backup(tdev, evolution):
    result = jobs.create("full", DAY, s3=False, dry_run=True)
    assert result["dry_run"] is True and not Path(result["archive"]).exists()
    assert result["store"]["counts"]["evolutions"] == 1 and result["files"] > 0
    assert result["retention"]["action"] == "would delete"
    assert not tdev.backup_dir.exists() or not any(tdev.backup_dir.rglob("*.tar.zst"))
    rows = {row["what"]: row["value"] for row in jobs.describe(result)}
    assert rows["archive"].endswith("(dry run: not written)") and rows["would read"].startswith(f"{result['files']} ")


def test_two_backups_in_one_second_never_share_an_archive(tdev, evolution):
    first = jobs.create("full", DAY, s3=False, prune=False)
    second = jobs.create("full", DAY, s3=False, prune=False)
    assert first["archive"] != second["archive"] and Path(first["archive"]).is_file()


def test_a_history_whose_store_is_lost_is_not_archived(tdev, evolution, store):
    (tdev.history / evolution["id"]).mkdir(parents=True, exist_ok=True)
    store.close()
    for leftover in tdev.history.glob("*.db*"):
        leftover.unlink()
    with pytest.raises(jobs.StoreMissing) as refused:
        jobs.create("full", DAY, s3=False)
    assert "state store is missing while the history shows it existed" in refused.value.message
    assert not tdev.backup_dir.exists() or not any(tdev.backup_dir.rglob("*.tar.zst"))


def test_the_measurement_cache_is_derived_data_and_never_backed_up(tdev, evolution):
    cached = tdev.history / "measure_cache" / "ab" / "ab12.json"
    cached.parent.mkdir(parents=True)
    cached.write_text('{"figures": {}}')
    (tdev.history / "current.log").write_text("kept\n")
    names = [member["path"] for member in archive.scan(Path(jobs.create("full", DAY, s3=False,
                                                                         prune=False)["archive"]))["files"]]
    assert "history/current.log" in names
    assert not any(name.startswith("history/measure_cache/") for name in names)
