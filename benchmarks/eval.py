"""Evaluation throughput for the tiny model on CPU, and the judge's concurrency and cache.

What it measures, on held-out synthetic OpenVE + RefVIE suites and a random tiny checkpoint:
- cases/minute of a cold evaluation (generation + offline metrics + judge + pictures), and the
  share of time spent generating vs scoring;
- the judge (pointed at benchmarks/judge_stub.py, a local OpenAI-compatible stub whose answers
  are fixed scores, each delayed by --judge-delay s):
  the most requests in flight at once (must be > 1 and <= --max-concurrency) and the speed-up
  over calling it one case at a time (calls x delay / judge wall time);
- a second evaluation of the same checkpoint: zero judge requests reach the server and zero
  outputs are regenerated;
- a cold evaluation without a judge (fresh outputs): generation vs offline-metric time alone.

    .venv/bin/python benchmarks/eval.py [--cases 12] [--frames 5] [--height 64] [--width 96] [--steps 2]

Prints a table and writes benchmarks/results/eval.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.judge_stub import run_judge_stub  # noqa: E402
from kiwi_platform.evaluation import (  # noqa: E402
    EvalSettings,
    build_synthetic_suite,
    evaluate_checkpoint,
    merge_suites,
)
from kiwi_platform.judge import Judge, JudgeCache, JudgeClient  # noqa: E402
from kiwi_platform.lib.files import write_text_atomic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "eval.json"


def scores(prompt: str) -> dict[str, int]:
    """A consistent judge: fixed scores per rubric (RefVIE prompts ask for reference_fidelity)."""
    if "reference_fidelity" in prompt:
        return {"reference_fidelity": 3, "matting_quality": 4, "physical_harmony": 4}
    return {"instruction_compliance": 3, "detail_preservation": 4, "temporal_consistency": 4}


def run(args: argparse.Namespace, work: Path) -> dict:
    import torch

    from model.build import init_checkpoint

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    size = {"frames": args.frames, "height": args.height, "width": args.width}
    t0 = time.perf_counter()
    openve = build_synthetic_suite("openve", work / "openve", n=args.cases, **size)
    refvie = build_synthetic_suite("refvie", work / "refvie", n=args.cases, seed=4242, **size)
    suite = merge_suites([openve, refvie], work / "suite", "bench")
    suite_s = time.perf_counter() - t0
    ckpt = init_checkpoint("tiny", work / "ckpt", seed=0)
    settings = EvalSettings.tiny(frames=args.frames, height=args.height, width=args.width, steps=args.steps)
    with run_judge_stub(scores, delay_s=args.judge_delay) as stub:
        client = JudgeClient(
            stub.base_url,
            "stub-judge",
            stub.api_key,
            max_concurrency=args.max_concurrency,
            timeout_s=30,
            backoff_s=0.05,
        )
        judge = Judge(client, JudgeCache(work / "judge-cache.sqlite"))
        cold = evaluate_checkpoint(ckpt, suite, work / "eval", settings=settings, judge=judge)
        cold_calls, cold_in_flight = stub.calls, stub.max_in_flight
        stub.reset()
        warm = evaluate_checkpoint(ckpt, suite, work / "eval", settings=settings, judge=judge)
        warm_calls = stub.calls
    offline = evaluate_checkpoint(ckpt, suite, work / "eval-offline", settings=settings)  # fresh outputs, no judge
    n = len(suite.cases)
    o = offline.timings
    t = cold.timings
    judge_serial = cold_calls * args.judge_delay
    return {
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
        },
        "settings": settings.model_dump(),
        "cases": n,
        "suite_counts": suite.summary()["counts"],
        "suite_build_s": round(suite_s, 2),
        "cold": {
            "total_s": t["total_s"],
            "cases_per_minute": t["cases_per_minute"],
            "generation_s": t["generation_s"],
            "generation_s_per_case": round(t["generation_s"] / n, 3),
            "scoring_s": t["scoring_s"],
            "offline_metrics_s": t["offline_metrics_s"],
            "judge_wall_s": t["judge_s"],
            "visuals_s": t["visuals_s"],
            "share_generation": round(t["generation_s"] / t["total_s"], 4),
            "share_scoring": round(t["scoring_s"] / t["total_s"], 4),
            "share_visuals": round(t["visuals_s"] / t["total_s"], 4),
            "judge_requests": cold_calls,
            "judge_max_in_flight": cold_in_flight,
            "judge_max_concurrency": args.max_concurrency,
            "judge_delay_s": args.judge_delay,
            "judge_speedup_vs_serial": round(judge_serial / max(t["judge_s"], 1e-9), 2),
        },
        "offline_only_cold": {
            "total_s": o["total_s"],
            "cases_per_minute": o["cases_per_minute"],
            "generation_s": o["generation_s"],
            "offline_metrics_s": o["offline_metrics_s"],
            "visuals_s": o["visuals_s"],
            "share_generation": round(o["generation_s"] / o["total_s"], 4),
            "share_scoring": round(o["scoring_s"] / o["total_s"], 4),
            "share_visuals": round(o["visuals_s"] / o["total_s"], 4),
        },
        "warm": {
            "total_s": warm.timings["total_s"],
            "cases_per_minute": warm.timings["cases_per_minute"],
            "judge_requests": warm_calls,
            "judge_cached": warm.judge_cached,
            "regenerated": warm.generated,
            "same_headline": warm.headline == cold.headline,
        },
        "headline_sample": {k: round(v, 4) for k, v in cold.headline.items() if k.count("/") == 1},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=12, help="synthetic pairs per suite kind (RefVIE keeps ~half)")
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--judge-delay", type=float, default=0.3, help="seconds the stub judge takes per answer")
    parser.add_argument("--max-concurrency", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiwi-bench-eval-") as tmp:
        result = run(args, Path(tmp))
    c, w, o = result["cold"], result["warm"], result["offline_only_cold"]
    rows = [
        ("cases (openve + refvie)", result["cases"]),
        ("settings", f"{args.height}x{args.width}, {args.frames} frames, {args.steps} steps, CPU"),
        ("cold: cases/minute", c["cases_per_minute"]),
        ("cold: generation s/case", c["generation_s_per_case"]),
        (
            "cold: time share generation / scoring / visuals",
            f"{c['share_generation']:.1%} / {c['share_scoring']:.1%} / {c['share_visuals']:.1%}",
        ),
        (
            "cold: judge requests / max in flight (bound)",
            f"{c['judge_requests']} / {c['judge_max_in_flight']} ({c['judge_max_concurrency']})",
        ),
        ("cold: judge speed-up vs one at a time", f"{c['judge_speedup_vs_serial']}x"),
        ("no judge: cases/minute", o["cases_per_minute"]),
        (
            "no judge: time share generation / offline metrics / visuals",
            f"{o['share_generation']:.1%} / {o['share_scoring']:.1%} / {o['share_visuals']:.1%}",
        ),
        ("warm: judge requests / cached", f"{w['judge_requests']} / {w['judge_cached']}"),
        ("warm: regenerated outputs", w["regenerated"]),
        ("warm: cases/minute", w["cases_per_minute"]),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    write_text_atomic(RESULTS, json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"\nwrote {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")


if __name__ == "__main__":
    main()
