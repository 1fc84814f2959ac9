"""How close single_pass comes to what FA3's own kernels reach on the same mask shape.

Why: the ideal (PrefixLM pairs at FA3's bidirectional pair rate) assumes every pair runs as fast as
an unmasked tile. A single PrefixLM pass has two kinds of work: rectangles (prefix x prefix and
response x prefix, plus response x earlier response blocks) that need no mask, and each
response's causal triangle (c(c+1)/2 pairs). FA3's own causal kernel sets the pace for triangles.
The floor is the rectangle pairs at the bidirectional bound's rate plus the triangle pairs at the
causal bound's rate (`fa3_causal_bound`, whole sequences causal), per direction, both measured in the
same configuration. Needs a run with both peers and single_pass:

    prefixbench sweep --suite default --variant single_pass --variant key_split --variant prefix_rows_add \
        --peer fa3_causal_bound --peer fa3_bidir_bound --out DIR
    python scripts/single_pass_floor.py DIR
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.spec.errors import UserError  # noqa: E402
from bench.results.records import Record, load_records  # noqa: E402
from bench.harness.workloads import packed_batch  # noqa: E402
from prefixlm_attn.pair_counts import prefixlm_pair_counts  # noqa: E402

BIDIR, CAUSAL, VARIANT = "fa3_bidir_bound", "fa3_causal_bound", "single_pass"
DIRECTIONS = ("forward", "backward")


def fwd_bwd(rec: Record) -> float:
    return rec.median("forward") + rec.median("backward")


def floor_row(group: dict[str, Record]) -> dict:
    """Floor and ratios of one configuration (records by implementation name)."""
    b, c, s = group[BIDIR], group[CAUSAL], group[VARIANT]
    batch = packed_batch(s.config)
    triangle = prefixlm_pair_counts(batch.prefix_lens, batch.causal_lens).passes["key_response"].exact
    total = s.batch["attended_pairs"]
    rate_b = {d: b.median(d) / b.notes["attended_pairs"] for d in DIRECTIONS}
    rate_c = {d: c.median(d) / c.notes["attended_pairs"] for d in DIRECTIONS}
    floor = sum((total - triangle) * rate_b[d] + triangle * rate_c[d] for d in DIRECTIONS)
    ideal = sum(total * rate_b[d] for d in DIRECTIONS)
    two_pass = min(((fwd_bwd(r), n) for n, r in group.items()
                    if r.kind == "variant" and n not in (VARIANT, "auto")), default=(float("nan"), "-"))
    return {"label": s.config.label, "causal_rate": (fwd_bwd(c) / c.notes["attended_pairs"])
            / (fwd_bwd(b) / b.notes["attended_pairs"]), "triangle_share": triangle / total,
            "over_ideal": fwd_bwd(s) / ideal, "over_floor": fwd_bwd(s) / floor, "floor_over_ideal": floor / ideal,
            "two_pass": two_pass[1], "two_pass_over_single": two_pass[0] / fwd_bwd(s)}


def rows(run: Path) -> list[dict]:
    groups: dict[str, dict[str, Record]] = {}
    for rec in load_records(run):
        if rec.ok:
            groups.setdefault(rec.config_id, {})[rec.variant] = rec
    return [floor_row(g) for g in groups.values() if {BIDIR, CAUSAL, VARIANT} <= set(g)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    args = ap.parse_args()
    try:
        table = rows(args.run)
    except UserError as exc:
        print(f"single_pass_floor: {exc}", file=sys.stderr)
        return 2
    if not table:
        print(f"single_pass_floor: no configuration in {args.run} has ok records of {VARIANT}, {BIDIR} and {CAUSAL}",
              file=sys.stderr)
        return 2
    print("fwd+bwd, the run's timing mode; rate = ms per attended pair")
    print("| configuration | causal bound's rate / bidirectional's | pairs in triangles | floor / ideal "
          "| single_pass / ideal | single_pass / floor | fastest two-pass / single_pass |")
    print("|---|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['label']} | {r['causal_rate']:.3f} | {r['triangle_share']:.0%} | {r['floor_over_ideal']:.3f} "
              f"| {r['over_ideal']:.3f} "
              f"| {r['over_floor']:.3f} | {r['two_pass_over_single']:.3f} ({r['two_pass']}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
