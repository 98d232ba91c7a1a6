"""lib/agents: which registered agent a phase calls."""

from __future__ import annotations

import pytest

from lib import agents, config
from lib.errors import NotFound


def test_a_phase_calls_its_first_agent_and_implement_may_have_several(tdev):
    tdev.write_config("settings", "evolution:\n  candidates: 2\n")
    tdev.write_config("agents", "agents:\n  - {name: a, phase: implement, runtime: local}\n"
                                "  - {name: p, phase: plan, runtime: local}\n"
                                "  - {name: b, phase: implement, runtime: local}\n")
    config.settings.cache_clear()
    assert [agent["name"] for agent in agents.registered_for("implement")] == ["a", "b"]
    assert agents.for_phase("implement")["name"] == "a" and agents.for_phase("plan")["name"] == "p"
    assert agents.registered_for("evaluate") == []
    with pytest.raises(NotFound, match="no agent registered for phase 'evaluate'"):
        agents.for_phase("evaluate")
