"""open_store(create=True) never starts an empty store over a lost one (DESIGN §8)."""

from __future__ import annotations

import pytest

from lib import paths
from lib.store import StoreLost, lost, open_store


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


def test_only_an_audit_line_of_a_command_that_makes_a_store_is_evidence(tdev):
    paths.audit_log().parent.mkdir(parents=True, exist_ok=True)
    paths.audit_log().write_text('{"command": "health_check.py --quick"}\nnot json\n')
    assert lost.history_evidence() == []
    with paths.audit_log().open("a") as audit:
        audit.write('{"command": "run_evolution.py --target lib --focus quality"}\n')
    assert lost.history_evidence() == [f"{paths.audit_log().name} records run_evolution.py"]
    assert "missing while the history shows it existed" in lost.lost_store()


def test_a_folder_that_only_looks_like_an_evolution_is_no_evidence(tdev):
    for name in ("evo-2030-abcdef", "notes", "evo-20300101000000-ABCDEF"):
        (tdev.history / name).mkdir(parents=True)
    assert lost.history_evidence() == []


def test_an_existing_store_is_never_lost_whatever_the_history(tdev):
    open_store(create=True).close()
    paths.evolution_dir("evo-20300101000000-abcdef").mkdir(parents=True)
    assert lost.lost_store() is None
    lost.refuse_lost_store()


def test_a_lost_dynamodb_table_is_refused_without_creating_it_and_a_kept_one_opens(tdev, aws, monkeypatch, capsys):
    monkeypatch.setenv("TDEV_STATE_BACKEND", "dynamodb")
    paths.evolution_dir("evo-20300101000000-abcdef").mkdir(parents=True)
    with pytest.raises(StoreLost) as refused:
        open_store(create=True)
    assert "the dynamodb state store is missing" in refused.value.message
    assert not lost.store_exists() and "no evolution history yet" not in capsys.readouterr().err
    open_store(create=True, restoring=True).close()  # a restore may bring it back
    assert lost.store_exists() and lost.lost_store() is None
    open_store(create=True).close()


def test_each_backend_asks_the_refusal_only_when_it_would_make_the_store(tdev):
    from lib.store.sqlite import SQLiteStore

    asked = []
    SQLiteStore.open(create=True, before_create=lambda: asked.append("made")).close()
    SQLiteStore.open(create=True, before_create=lambda: asked.append("opened")).close()
    SQLiteStore.open(before_create=lambda: asked.append("read")).close()
    assert asked == ["made"]
