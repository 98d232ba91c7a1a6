"""T-Developer ops toolkit: the shared core behind every runbook script."""

__version__ = "2.0.0"
