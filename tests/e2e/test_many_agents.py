"""pre_evolution_check.py with 5,000 agents in agents.yaml finishes every check (issue 16: it timed out)."""

from __future__ import annotations

import json

from tests.unit.health.test_preflight_many_agents import many_agents


def test_pre_evolution_check_with_5000_agents_finishes_every_check(tdev, git_repo):
    many_agents(tdev, 5000)
    result = tdev.run("pre_evolution_check.py", "--target", str(git_repo / "packages/agents"), "--json")
    assert result.returncode in (0, 1), result.stdout + result.stderr
    checks = json.loads(result.stdout)["checks"]
    assert all(check["status"] in ("ok", "warning") for check in checks), checks
    assert not any("timed out" in check["summary"] for check in checks)
