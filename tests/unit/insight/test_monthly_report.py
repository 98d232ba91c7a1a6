"""The monthly report without matplotlib (it is optional): the Markdown says where the charts would be
and how to get them, and no chart file is written."""

from __future__ import annotations

import sys

from lib.insight import reports


def test_without_matplotlib_the_report_says_how_to_add_the_charts(store, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails, as when not installed
    assert not reports.charts_available()
    folder = tmp_path / "out"
    result = reports.monthly(store, reports.month_window("2024-01"), folder / "report.md")
    assert result["charts"] == {} and "pip install matplotlib" in result["charts_note"]
    text = (folder / "report.md").read_text()
    assert "_Daily key metrics: no charts: matplotlib is not installed (pip install matplotlib" in text
    assert "_Daily cost: no charts" in text and "![" not in text
    assert [path.name for path in folder.iterdir()] == ["report.md"]
