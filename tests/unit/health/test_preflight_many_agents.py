"""With 5,000 agents the pre-evolution checks parse agents.yaml once, however many checks ask for it."""

from __future__ import annotations

import re

from lib import config
from lib.health import preflight

PHASES = {"research": "research-agent", "plan": "planner-agent", "implement": "refactor-agent",
          "evaluate": "evaluator-agent"}


def many_agents(tdev, count: int) -> None:
    lines = ["agents:", *(f"  - {{name: {name}, phase: {phase}, runtime: local}}" for phase, name in PHASES.items())]
    lines += [f"  - {{name: extra-{n}, phase: implement, runtime: command, command: [/bin/true]}}"
              for n in range(count - len(PHASES))]
    tdev.write_config("agents", "\n".join(lines) + "\n")
    settings = tdev.config_dir / "settings.yaml"  # several implement agents are candidates (DESIGN §3)
    settings.write_text(re.sub(r"\n  candidates: \d+", "\n  candidates: 2", settings.read_text(), count=1))


def test_agents_yaml_is_parsed_once_per_content(tdev, git_repo, monkeypatch):
    many_agents(tdev, 5000)
    parsed = []
    real = config._load_text
    monkeypatch.setattr(config, "_load_text", lambda name, *rest: parsed.append(name) or real(name, *rest))
    results = preflight.run(str(git_repo / "packages" / "agents"))
    assert parsed.count("agents") == 1
    assert all(result.status != "unknown" for result in results), [(r.name, r.summary) for r in results]

    many_agents(tdev, 4)  # an edit is seen at once
    assert len(config.agents()) == 4 and parsed.count("agents") == 2


def test_a_caller_changing_its_copy_changes_no_one_elses(tdev):
    config.agents()[0]["name"] = "changed"
    assert config.agents()[0]["name"] == "research-agent"
