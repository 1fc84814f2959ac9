"""Where drained-queue (eager) calls leave the GPU idle, per implementation (bench/harness/clocks/timeline.py).

    python scripts/gpu/eager_gaps.py --out DIR [--tokens 16384 --tokens 65536]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.harness.clocks.timeline import eager_gaps  # noqa: E402
from bench.spec.grid import Config  # noqa: E402
from bench.harness.registry import registry  # noqa: E402
from bench.harness.workloads import build_workload  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--distribution", default="sft_long_prompt")
    p.add_argument("--tokens", type=int, action="append")
    p.add_argument("--variant", action="append")
    p.add_argument("--reps", type=int, default=20)
    args = p.parse_args()
    names = args.variant or ["zeros_always", "guarded_passthrough"]
    args.out.mkdir(parents=True, exist_ok=True)
    result = {}
    for tokens in args.tokens or [16384, 65536]:
        config = Config(args.distribution, tokens, 16, 128, "bfloat16", 0, 8192)
        w = build_workload(config, "cuda")
        calls = {n: registry()[n].prepare(w, "fa3").forward for n in names}
        r = eager_gaps(calls, w.dout, w.clear_grads, args.reps)
        result[config.config_id] = r
        print(f"## {config.label}")
        for name, s in r.items():
            print(f"{name}: event {s['event_ms']:.3f} ms, kernel span {s['span_ms']:.3f}, busy {s['busy_ms']:.3f}, "
                  f"idle inside {s['idle_ms']:.3f}, kernels {s['kernels']}")
            for place, g in s["gaps_us"].items():
                print(f"    gap {g['median']:8.1f} us ({g['calls']} calls)  {place}")
        del w, calls
    (args.out / "eager_gaps.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
