"""Insight: what the history says (listings, key metrics, exposition, reports, traces, diagnosis)."""

# Here, not in metrics/exposition, because the scripts' options show them: --help loads no command code.
#: The window the key metrics cover unless told.
DEFAULT_WINDOW = "7d"
#: The formats export_metrics.py writes.
FORMATS = ("prometheus", "openmetrics", "json", "cloudwatch")
#: Where show_costs.py and cost_analysis.py read costs: auto (Cost Explorer when reachable), tracked, aws.
COST_SOURCES = ("auto", "tracked", "aws")
