"""cleanup and gc treat a candidate's worktree (worktrees/<id>-c<k>) as its evolution's (DESIGN §5 Candidates)."""

from __future__ import annotations

from lib import paths
from lib.evolution import lifecycle
from lib.ops import cleanup
from lib.store import open_store


def removals(plan: cleanup.Plan) -> set[str]:
    return {item.what for item in plan.items if item.action == "remove-worktree"}


def test_candidate_worktrees_go_with_their_evolution_and_stay_while_it_runs(tdev, git_repo):
    store = open_store(create=True)
    try:
        ended = lifecycle.create(store, git_repo / "packages/agents", "docs", 1, dry_run=True)
        store.update_evolution(ended["id"], {"status": "failed"})
        running = lifecycle.create(store, git_repo / "packages", "docs", 1, dry_run=True)
        store.update_evolution(running["id"], {"status": "running"})
        folders = {name: paths.worktrees_dir() / name for name in (
            ended["id"], f"{ended['id']}-c1", f"{ended['id']}-c2", f"{running['id']}-c1")}
        for folder in folders.values():
            folder.mkdir(parents=True)
        gone = {str(folders[name]) for name in (ended["id"], f"{ended['id']}-c1", f"{ended['id']}-c2")}
        assert removals(cleanup.plan_all(store)) == gone
        assert removals(cleanup.plan_gc(store, aggressive=False)) == gone
        assert removals(cleanup.plan_evolution(store, ended["id"])) == gone
    finally:
        store.close()
