"""lib/quality/gates.py: the gates of config/gates.yaml on the evolution targets, as check_metrics.py and the
health check show them, measured on real folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.quality import gates

DOCUMENTED = '"""A module."""\n\n\ndef add(a, b):\n    """Sum."""\n    return a + b\n'
BARE = "def f(a):\n    if a:\n        return 1\n    return 2\n\n\ndef g():\n    return 3\n"


@pytest.fixture
def target(tmp_path, tdev, monkeypatch) -> Path:
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "good.py").write_text(DOCUMENTED)
    (folder / "bare.py").write_text(BARE)
    monkeypatch.chdir(tmp_path)
    return folder


def test_targets_are_the_default_and_the_environment_s_once_each(target, monkeypatch):
    monkeypatch.setenv("EVOLUTION_TARGET", "pkg")
    assert gates.default_targets() == ["packages/agents", "pkg"]
    monkeypatch.setenv("EVOLUTION_TARGET", "packages/agents")
    assert gates.default_targets() == ["packages/agents"]


def test_targets_split_existing_folders_from_missing_names_and_all_adds_the_history_s(target, store):
    store.create_evolution({"id": "evo-1", "target": str(target), "focus": "quality", "cycles": 1,
                            "status": "succeeded", "host": "h", "started_at": "2026-01-01T00:00:00+00:00",
                            "finished_at": "2026-01-01T01:00:00+00:00"})
    assert gates.targets(store) == ([], ["packages/agents"])
    assert gates.targets(store, every=True) == ([target], ["packages/agents"])
    assert gates.targets(store, explicit=("pkg", "pkg", "nowhere")) == ([target], ["nowhere"])


def test_the_report_gives_each_gate_a_status_and_the_worst_files_when_verbose(target):
    report = gates.gate_report(target, verbose=True)
    assert report["files"] == 2
    by_metric = {gate["metric"]: gate for gate in report["gates"]}
    assert by_metric["coverage"]["status"] == "no-data" and by_metric["coverage"]["worst_files"] == []
    docstring = by_metric["docstring"]
    assert (docstring["value"], docstring["status"]) == (40.0, "failed")  # 2 of 5: module and add
    assert by_metric["complexity"]["status"] == "passed"
    assert docstring["worst_files"][0]["file"].endswith("bare.py") and docstring["worst_files"][0]["value"] == 0
    assert by_metric["complexity"]["worst_files"][0]["file"].endswith("bare.py")


def test_results_are_critical_per_failed_gate_and_unknown_without_a_target(target, tdev):
    tdev.write_config("gates", "gates:\n  docstring: {threshold: 100, direction: min, unit: '%'}\n")
    [result] = gates.gate_results([target], [], verbose=True)
    assert (result.name, result.area, result.status) == ("docstring", "gates pkg", "critical")
    assert result.summary.endswith("(gate >= 100%) failed")
    assert gates.worst_file_rows([result])[0] == {"target": "pkg", "gate": "docstring",
                                                   "file": result.details["worst_files"][0]["file"], "value": 0}
    [unknown] = gates.gate_results([], ["pkg-gone"], verbose=False)
    assert unknown.status == "unknown" and "pkg-gone" in unknown.summary


def test_security_findings_prefer_the_audit_s_recorded_count(target, store):
    store.set_meta("security-findings", {"count": 4})
    assert gates.security_findings(store) == 4
    store.set_meta("security-findings", [{"rule": "a"}, {"rule": "b"}])
    assert gates.security_findings(store) == 2
    store.set_meta("security-findings", None)
    assert gates.security_findings(store) is None  # no recorded count and no target folder to measure
