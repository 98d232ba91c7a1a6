"""open_store(create=True) never starts an empty store over a lost one (DESIGN §8)."""

from __future__ import annotations

import pytest

from lib import paths
from lib.store import StoreLost, open_store


def test_a_missing_store_without_a_history_is_created(tdev):
    open_store(create=True).close()
    assert (tdev.history / "state.db").exists()


def test_a_missing_store_with_evolution_folders_is_refused_and_reads_name_restore(tdev, capsys):
    paths.evolution_dir("evo-20300101000000-abcdef").mkdir(parents=True)
    with pytest.raises(StoreLost) as refused:
        open_store(create=True)
    assert "1 evolution folder(s) such as evo-20300101000000-abcdef" in refused.value.message
    assert refused.value.hint.startswith("restore it: python scripts/restore.py")
    assert not (tdev.history / "state.db").exists()

    reader = open_store()
    assert not reader.exists
    reader.close()
    note = capsys.readouterr().err
    assert "restore it: python scripts/restore.py" in note and "init_evolution" not in note


def test_restore_may_bring_a_lost_store_back(tdev):
    paths.evolution_dir("evo-20300101000000-abcdef").mkdir(parents=True)
    open_store(create=True, restoring=True).close()
    assert (tdev.history / "state.db").exists()
