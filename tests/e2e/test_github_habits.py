"""gh's habits end to end, against the GitHub stand-in: GH_TOKEN before GITHUB_TOKEN, the token
of a logged-in gh when no variable names one (never shown), and a flaky gateway or a secondary
rate limit retried as Retry-After asks."""

from __future__ import annotations

import json

from github_standin import TOKEN

ISSUES = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues"


def merge_rate(tdev, env: dict | None = None) -> tuple[dict, str]:
    done = tdev.run("show_metrics.py", "--json", env=env)
    assert done.returncode == 0, done.stderr
    rate = next(m for m in json.loads(done.stdout)["metrics"] if m["name"] == "pr_merge_rate")
    return rate, done.stdout + done.stderr


def test_gh_token_comes_before_github_token(tdev, github):
    github.add_pull(state="closed", closed_at="2999-01-01T00:00:00Z", merged_at="2999-01-01T00:00:00Z",
                    labels=["auto-evolution"])
    rate, _ = merge_rate(tdev, {"GH_TOKEN": TOKEN, "GITHUB_TOKEN": "ghp_wrongTOKEN0123456789abcdefghijklm"})
    assert rate["status"] != "unknown", rate
    rate, output = merge_rate(tdev, {"GH_TOKEN": "ghp_wrongTOKEN0123456789abcdefghijklm"})
    assert rate["status"] == "unknown" and "401" in output and "ghp_wrong" not in output


def test_a_logged_in_gh_is_the_last_resort_and_its_token_is_never_shown(tdev, github):
    del tdev.env["GITHUB_TOKEN"]
    bin_dir = tdev.base / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(f'#!/bin/sh\n[ "$*" = "auth token --hostname github.com" ] && echo {TOKEN}\n')
    (bin_dir / "gh").chmod(0o755)
    rate, output = merge_rate(tdev, {"PATH": f"{bin_dir}:{tdev.env['PATH']}", "DEBUG": "true"})
    assert rate["status"] != "unknown" and "GitHub not configured" not in output
    assert TOKEN not in output
    rate, output = merge_rate(tdev)  # no variable, no gh: not configured, said once
    assert rate["status"] == "no-data" and "GitHub not configured" in output


def test_a_flaky_gateway_and_a_secondary_rate_limit_are_retried(tdev, github):
    listing = next(handler for method, pattern, handler in github.routes
                   if method == "GET" and pattern.pattern == f"^{ISSUES}$")
    answers = [(502, {"message": "Bad Gateway"}, {"Retry-After": "0"}),
               (403, {"message": "You have exceeded a secondary rate limit."}, {"Retry-After": "0"})]

    @github.route("GET", ISSUES)
    def flaky(s, m, q, b):
        return answers.pop(0) if answers else listing(s, m, q, b)

    github.add_pull(state="open", labels=["auto-evolution"])
    rate, output = merge_rate(tdev)
    assert answers == [] and rate["status"] != "unknown", output
    assert len([path for _, path, _, _ in github.requests if path.endswith("/issues")]) == 3
