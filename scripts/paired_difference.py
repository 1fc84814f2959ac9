"""Backward-time difference of two variants, measured (paired rounds) next to the byte-count prediction.

Why a script: the byte model's check (zeros_always - guarded_passthrough within 20% of the
prediction) compares two variants directly, not each against the best, and reads the per-round
samples the sweep stores. Usage:

    python scripts/paired_difference.py results/h100/default_runC results/h100/default_runD \
        [--a zeros_always] [--b guarded_passthrough]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.spec.errors import UserError  # noqa: E402
from bench.results.derived import paired_difference, predicted_extra_ms  # noqa: E402
from bench.results.records import Record, load_records  # noqa: E402


def rows(run: Path, name_a: str, name_b: str) -> list[dict]:
    by_config: dict[str, dict[str, Record]] = {}
    for rec in load_records(run):
        if rec.status == "ok":
            by_config.setdefault(rec.config_id, {})[rec.variant] = rec
    out = []
    for config_id, recs in by_config.items():
        if name_a not in recs or name_b not in recs:
            continue
        a, b = recs[name_a], recs[name_b]
        diff = paired_difference(a.samples_ms["backward"], b.samples_ms["backward"])
        p, (p_lo, p_hi) = predicted_extra_ms(a, b, a.bandwidth)
        out.append({"run": run.name, "distribution": a.distribution, "tokens": a.tokens,
                    "measured": diff, "predicted": (p, p_lo, p_hi),
                    "causal_tokens": a.batch["causal_tokens"]})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--a", default="zeros_always")
    ap.add_argument("--b", default="guarded_passthrough")
    args = ap.parse_args()
    try:
        table = [r for run in args.runs for r in rows(run, args.a, args.b)]
    except UserError as exc:
        print(f"paired_difference: {exc}", file=sys.stderr)
        return 2
    if not table:
        print(f"paired_difference: no configuration has ok records of both {args.a} and {args.b}", file=sys.stderr)
        return 2
    table.sort(key=lambda r: (r["distribution"], r["tokens"], r["run"]))
    print(f"backward ms, {args.a} - {args.b}")
    print("| distribution | T | run | measured ms [95% CI] | predicted ms [interval] | measured/predicted |")
    print("|---|---|---|---|---|---|")
    within = total = 0
    for r in table:
        m, (p, p_lo, p_hi) = r["measured"], r["predicted"]
        ratio = m.median / p if p else float("nan")
        if r["causal_tokens"] > 0:
            total += 1
            within += abs(ratio - 1) <= 0.2
        print(f"| {r['distribution']} | {r['tokens']} | {r['run']} | {m.median:.4f} [{m.lo:.4f}, {m.hi:.4f}] "
              f"| {p:.4f} [{p_lo:.4f}, {p_hi:.4f}] | {ratio:.2f} |")
    print(f"\nwithin 20% on batches with causal tokens: {within} of {total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
