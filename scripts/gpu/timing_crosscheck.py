"""Cross-check of the gpu clock on one GPU: held fwd+bwd vs the profiler's kernel sum, vs eager,
graph replays of two identical-work variants in interleaved rounds, and detection of calls that
synchronize inside their enqueue. Prints markdown tables; writes crosscheck.json into --out.

    python scripts/gpu/timing_crosscheck.py --out results/h100/timing_crosscheck
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from bench.harness.clocks.crosscheck import detection, graph_pair, held_under_profiler, held_vs_kernels  # noqa: E402
from bench.harness.clocks.hold import build_hold, held_ms  # noqa: E402
from bench.spec.grid import Config  # noqa: E402
from bench.harness.measure import spin_up  # noqa: E402
from bench.results.stats import StoppingRule  # noqa: E402

CONFIGS = [("sft_long_prompt", 16384), ("sft_long_prompt", 65536), ("short_prefix_long_response", 65536)]
VARIANTS = ["guarded_passthrough", "prefix_rows_add"]
GRAPH_PAIR = ["guarded_zero_fill", "guarded_passthrough"]


def _ci(s: dict) -> str:
    return f"{s['median']:.3f} [{s['lo']:.3f}, {s['hi']:.3f}]"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--backend", default="fa3")
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--min-reps", type=int, default=30)
    p.add_argument("--max-reps", type=int, default=200)
    p.add_argument("--target-rel-ci", type=float, default=0.005)
    p.add_argument("--time-cap", type=float, default=8.0)
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("timing_crosscheck: needs a CUDA device", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    rule = StoppingRule(args.min_reps, args.max_reps, args.target_rel_ci, args.time_cap)
    report: dict = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "backend": args.backend,
                    "rule": vars(args) | {"out": str(args.out)}}
    report["spin_up"] = spin_up("cuda")
    hold, note = build_hold()
    if hold is None:
        print(f"timing_crosscheck: {note}", file=sys.stderr)
        return 1
    report["hold"] = {"kind": hold.kind, "note": note, "timeout_s": hold.timeout_s,
                      "held_ms_for_20ms_host_wait": round(held_ms(hold, 0.02), 3)}
    print(f"hold: {hold.kind} ({note or 'spin on a pinned host flag'}); an event pair around engage() "
          f"with the host waiting 20 ms: {report['hold']['held_ms_for_20ms_host_wait']} ms")

    def config(dist: str, tokens: int) -> Config:
        return Config(dist, tokens, args.heads, args.head_dim, "bfloat16")

    def held_section() -> None:
        report["held_vs_kernels"] = []
        print("\n| configuration | impl | gpu (held) ms | eager ms | profiler kernel sum ms | gpu/kernels | "
              "eager/kernels | host overhead ms | host enqueue ms | gpu method | rounds |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for dist, tokens in CONFIGS:
            t = time.perf_counter()
            try:
                res = held_vs_kernels(config(dist, tokens), VARIANTS, args.backend, rule, hold)
            except Exception:  # noqa: BLE001 - the next configuration still runs
                report.setdefault("errors", []).append(traceback.format_exc())
                traceback.print_exc()
                continue
            res["wall_s"] = time.perf_counter() - t
            report["held_vs_kernels"].append(res)
            for r in res["rows"]:
                print(f"| {dist} {tokens // 1024}k | {r['impl']} | {_ci(r['gpu_ms'])} | {_ci(r['eager_ms'])} | "
                      f"{r['kernel_sum_ms']:.3f} | {r['gpu_vs_kernels']:+.2%} | {r['eager_vs_kernels']:+.2%} | "
                      f"{_ci(r['host_overhead_ms'])} | {r['enqueue_ms']['median']:.3f} | {r['gpu_method']} | {res['rounds']} ({res['stop_reason']}) |")
        print("\npaired fwd+bwd deltas, ms (median [95% interval]):")
        for res in report["held_vs_kernels"]:
            for k, v in res["paired_deltas_ms"].items():
                print(f"  {res['rows'][0]['config']}: {k}: {_ci(v)}")

    def same_calls_section() -> None:
        report["held_under_profiler"] = []
        print("\nsame calls, same clocks: held rounds inside one profile (spin kernel excluded)")
        print("| configuration | impl | held events ms/call | kernel sum ms/call | held/kernels | method |")
        print("|---|---|---|---|---|---|")
        for dist, tokens in CONFIGS:
            for r in held_under_profiler(config(dist, tokens), VARIANTS, args.backend, hold):
                report["held_under_profiler"].append(r)
                print(f"| {dist} {tokens // 1024}k | {r['impl']} | {r['held_events_ms_per_call']:.3f} | "
                      f"{r['kernel_sum_ms_per_call']:.3f} | {r['held_vs_kernels']:+.2%} | {r['gpu_method']} |")

    def graph_section() -> None:
        g = graph_pair(config("sft_long_prompt", 16384), GRAPH_PAIR, args.backend, rule, hold)
        report["graph_pair"] = g
        print(f"\ngraph, gpu and eager clocks interleaved at {g['config']} ({g['rounds']} rounds, {g['stop_reason']}):")
        for k, v in g["medians_ms"].items():
            print(f"  {k}: {_ci(v)} ms")
        if "graph_ratio" in g:
            print(f"  graph {GRAPH_PAIR[0]} / {GRAPH_PAIR[1]}, paired by round: {_ci(g['graph_ratio'])}")
        if g["errors"]:
            print(f"  capture errors: {g['errors']}")

    def detection_section() -> None:
        d = detection(config("sft_long_prompt", 16384), args.backend)
        report["detection"] = d
        print(f"\ndetection (hold timeout {d['timeout_s']} s): fell back: {sorted(d['fallbacks'])}")
        for n, v in d["fwd_bwd_ms"].items():
            print(f"  {n}: fwd+bwd per round {v}; host enqueue ms {d['enqueue_ms'].get(n)}; "
                  f"note: {d['fallbacks'].get(n, 'held')}")

    failed = 0
    for section in (held_section, same_calls_section, graph_section, detection_section):
        try:
            section()
        except Exception:  # noqa: BLE001 - one failing check must not hide the others' numbers
            failed += 1
            report.setdefault("errors", []).append(traceback.format_exc())
            traceback.print_exc()
    (args.out / "crosscheck.json").write_text(json.dumps(report, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
