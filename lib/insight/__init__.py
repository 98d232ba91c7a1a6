"""Insight: what the history says (listings, key metrics, exposition, reports, traces, diagnosis)."""
