"""Smoke test of benchmarks/bench_prompt_cache.py on a tiny target: both modes run, cachePoints are sent,
and caching bills fewer input tokens at full price (no timing assertions)."""

from __future__ import annotations

import importlib.util

from aws_helpers import fresh_clients  # noqa: F401 - autouse: clients made for this test's endpoint

from tests.conftest import ROOT


def test_the_benchmark_runs_on_a_tiny_target(tmp_path, monkeypatch, tdev):
    spec = importlib.util.spec_from_file_location("bench_prompt_cache", ROOT / "benchmarks" / "bench_prompt_cache.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("".join(f"def f{n}(x):\n    return x + {n}\n\n\n" for n in range(300)))
    for key in ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
                "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(key, "restored-after-the-test")
    results = bench.run(tmp_path, "pkg/mod.py", cycles=1)
    [cached], [uncached] = results["cached"], results["uncached"]
    assert results["cache_points_sent"] == 4
    assert uncached["cached"] == 0 and cached["cached"] > 0
    assert cached["billed_input"] < uncached["billed_input"] and cached["cost_usd"] < uncached["cost_usd"]
    assert cached["prompt_bytes"] == uncached["prompt_bytes"]
