"""Input tokens billed per evolution cycle with prompt caching against without (issue 18), through the
Converse stand-in: the four phases of one cycle on a real target's main file (python-tabulate's
100 KB tabulate/__init__.py by default), sent by the bedrock runtime exactly as an evolution sends it.

The stand-in counts tokens as Bedrock reports them (about 4 characters a token): the blocks before a
cachePoint are written to its cache on first sight and read from it afterwards. Each cycle starts
with a cold cache (the conservative case: a later cycle within the cache's lifetime would read even
the research phase's files from it). "Billed at the input price" is every prompt token that was not
read from the cache; the cost uses Claude 3.5 Sonnet's on-demand prices with a cache read at a tenth.

Usage: python benchmarks/bench_prompt_cache.py [--target /work/real/tabulate] [--file tabulate/__init__.py]
                                               [--cycles 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "support"))

PRICES = {"price_per_1k_input_usd": 0.003, "price_per_1k_output_usd": 0.015, "price_per_1k_cache_read_usd": 0.0003}
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
OUTPUTS = {"research": {"summary": "public functions lack docstrings"}, "plan": {"files": []},
           "implement": "Nothing safe to change.\n```diff\n```\n", "evaluate": {"verdict": "pass"}}


def answer(request: dict) -> dict:
    """Each phase's reply, chosen by the phase message's first line."""
    from bedrock_standin import converse_answer

    message = request["body"]["messages"][0]["content"][0]["text"]
    phase = message.split("# Phase: ", 1)[1].split()[0]
    output = OUTPUTS[phase]
    text = output if isinstance(output, str) else f"```json\n{json.dumps(output)}\n```"
    return converse_answer(text, output_tokens=200)


def payloads(target: Path, file: str) -> list[dict]:
    """The §5 input of each phase of one cycle, the earlier phases' outputs in its context."""
    from lib.evolution import context as agent_context

    files = agent_context.build(target, str(Path(file).parent), "implement", "docs", [file], 200_000)["files"]
    context: dict = {}
    result = []
    for phase in ("research", "plan", "implement", "evaluate"):
        result.append({"evolution_id": "evo-bench", "task_id": f"task-{phase}", "cycle": 1, "attempt": 1,
                       "phase": phase, "target": str(Path(file).parent), "focus": "docs", "dry_run": True,
                       "files": files, "patterns": [], "gates": {}, "metrics": {"docstring": 41.0},
                       "context": dict(context), "feedback": [], "history": []})
        context[phase] = {"research": {"summary": "public functions lack docstrings"}, "plan": {"files": [file]},
                          "implement": {"patch": "", "summary": "no change"}, "evaluate": {}}[phase]
    return result


def cycle(standin, cached: bool, inputs: list[dict]) -> dict:
    """One cycle's four calls; the sums of what Bedrock would report and bill."""
    from lib.agents.bedrock import BedrockRuntime

    standin.cached_prefixes.clear()
    sums = {"input": 0, "cached": 0, "billed_input": 0, "cost_usd": 0.0, "prompt_bytes": 0}
    started = time.perf_counter()
    for payload in inputs:
        runtime = BedrockRuntime({"name": f"{payload['phase']}-agent", "phase": payload["phase"],
                                  "runtime": "bedrock", "model_id": MODEL, "cache_prompt": cached, **PRICES})
        reply = runtime.invoke(payload, timeout=60)
        sums["input"] += reply["tokens"]["input"]
        sums["cached"] += reply["tokens"]["cached"]
        sums["billed_input"] += reply["tokens"]["input"] - reply["tokens"]["cached"]
        sums["cost_usd"] += reply["cost_usd"]
        sums["prompt_bytes"] += runtime.prompt(payload).size()
    sums["seconds"] = time.perf_counter() - started
    return sums


def run(target: Path, file: str, cycles: int) -> dict:
    """{cached: [per-cycle sums], uncached: [...]}, the two modes alternating so load hits both alike."""
    import os

    from bedrock_standin import CREDENTIALS, BedrockStandIn

    standin = BedrockStandIn().start()
    standin.count_tokens, standin.default = True, answer
    os.environ.update({**CREDENTIALS, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": standin.url})
    try:
        inputs = payloads(target, file)
        results: dict[str, list] = {"cached": [], "uncached": []}
        for _ in range(cycles):
            results["uncached"].append(cycle(standin, False, inputs))
            results["cached"].append(cycle(standin, True, inputs))
        sent_cache_points = sum(1 for r in standin.requests if any("cachePoint" in b for b in r["body"]["system"]))
        results["cache_points_sent"] = sent_cache_points
        return results
    finally:
        standin.stop()


def median(rows: list[dict], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=Path, default=Path("/work/real/tabulate"))
    parser.add_argument("--file", default="tabulate/__init__.py")
    parser.add_argument("--cycles", type=int, default=5)
    args = parser.parse_args()
    size = (args.target / args.file).stat().st_size
    results = run(args.target, args.file, args.cycles)
    print(f"target: {args.target / args.file} ({size / 1024:.0f} KB), {args.cycles} cycles of 4 phases each mode")
    print(f"{'per cycle (median)':<34}{'without caching':>18}{'with caching':>16}")
    for label, key, fmt in (("prompt bytes sent", "prompt_bytes", "{:,.0f}"),
                            ("input tokens reported", "input", "{:,.0f}"),
                            ("of which read from cache", "cached", "{:,.0f}"),
                            ("input tokens billed at full price", "billed_input", "{:,.0f}"),
                            ("cost (USD, Sonnet prices)", "cost_usd", "{:.4f}"),
                            ("wall time through the stand-in (s)", "seconds", "{:.3f}")):
        print(f"{label:<34}{fmt.format(median(results['uncached'], key)):>18}"
              f"{fmt.format(median(results['cached'], key)):>16}")
    saved = 1 - median(results["cached"], "billed_input") / median(results["uncached"], "billed_input")
    print(f"full-price input tokens saved by caching: {saved:.0%}")


if __name__ == "__main__":
    main()
