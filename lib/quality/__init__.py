"""Quality: the runner's measurement of a target, the gates on it, the gates file, and the learned patterns."""

#: What an evolution can set out to improve (measure.py scores files and names the metrics of each);
#: here so that run_evolution.py --help loads no measurement.
FOCUSES = ("quality", "docs", "complexity", "maintainability", "security", "lint")
#: The metrics each focus sets out to move: what the history's IMPACT and the monthly report show.
FOCUS_METRICS = {
    "quality": ("lint", "docstring"),
    "docs": ("docstring",),
    "complexity": ("complexity",),
    "maintainability": ("maintainability",),
    "security": ("security",),
    "lint": ("lint",),
}
