"""Monitoring hooks: notifications of check results and cron heartbeats (DESIGN §9), as borgmatic has them.

They return or raise; lib/cli.py calls them around a command and prints what they report.
"""
