"""Every "DESIGN §N" a comment cites leads somewhere: docs/DESIGN.md has that section."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CITED = re.compile(r"DESIGN §(\d+)")


def design_sections() -> set[str]:
    text = (ROOT / "docs" / "DESIGN.md").read_text()
    return set(re.findall(r"^## (\d+)\. ", text, re.M))


def citations() -> dict[str, set[str]]:
    cited: dict[str, set[str]] = {}
    for folder in ("lib", "scripts", "mcp", "benchmarks", "tests", ".ci", ".github"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".yaml", ".yml", ".md", ""}:
                for number in CITED.findall(path.read_text(errors="replace")):
                    cited.setdefault(number, set()).add(str(path.relative_to(ROOT)))
    return cited


def test_every_cited_design_section_exists():
    sections = design_sections()
    missing = {number: sorted(files) for number, files in citations().items() if number not in sections}
    assert not missing, f"cited sections missing from docs/DESIGN.md: {missing}"


def test_the_code_cites_the_design():
    assert len(citations()) >= 5
