"""Values derived from measured numbers, as pure functions of plain numbers and records.

Torch-free: the sweep computes them once when it builds a record; the report and compare read them
back, and recompute only `ideal` (which needs a peer of the same configuration).
"""
from __future__ import annotations

from typing import Optional

from bench.results.records import Record
from bench.results.stats import Stat, median_ci, paired_deltas, run_ci

FLOPS_PER_PAIR_FWD = 4          # QK^T and PV: 2 multiply-adds per head-dim element
FLOPS_PER_PAIR_BWD = 10         # dV, dP, dS->dQ, dK, plus the recomputed QK^T (FA convention: 2.5x fwd)


def tflops(attended_pairs: int, heads: int, head_dim: int, forward_ms: float, backward_ms: float) -> dict[str, float]:
    """Attention TFLOP/s of one forward and one backward at the given medians."""
    pairs = attended_pairs * heads * head_dim
    return {"forward": FLOPS_PER_PAIR_FWD * pairs / (forward_ms * 1e9),
            "backward": FLOPS_PER_PAIR_BWD * pairs / (backward_ms * 1e9)}


def host_overhead(eager: dict[str, list[float]], gpu: dict[str, list[float]]) -> dict[str, Stat]:
    """eager - gpu per direction (forward, backward, fwd_bwd), paired by round."""
    e, g = with_fwd_bwd(eager), with_fwd_bwd(gpu)
    return {d: paired_difference(e[d], g[d]) for d in ("forward", "backward", "fwd_bwd")}


def with_fwd_bwd(series: dict[str, list[float]]) -> dict[str, list[float]]:
    """The per-round series plus fwd_bwd, the per-round sum of forward and backward."""
    return {**series, "fwd_bwd": [f + b for f, b in zip(series["forward"], series["backward"])]}


def ideal_ratios(attended_pairs: int, forward_ms: float, backward_ms: float, rate_forward: float,
                 rate_backward: float, peer: str) -> dict:
    """A variant's time over the ideal: its pairs at the bound peer's per-pair rate (ms / pair)."""
    ideal_fwd, ideal_bwd = attended_pairs * rate_forward, attended_pairs * rate_backward
    return {"fwd": forward_ms / ideal_fwd, "bwd": backward_ms / ideal_bwd,
            "fwd_bwd": (forward_ms + backward_ms) / (ideal_fwd + ideal_bwd),
            "ideal_fwd_ms": ideal_fwd, "ideal_bwd_ms": ideal_bwd, "peer": peer}


IDEAL_PEER = "fa3_bidir_bound"     # FA3's bidirectional single pass: the rate no PrefixLM variant can beat by much


def fill_ideal(records: list[Record], peer: str = IDEAL_PEER) -> None:
    """`ideal` of each ok variant record: its fwd, bwd and fwd+bwd time over the ideal time, where the ideal
    is the batch's PrefixLM pairs at the per-pair rate (ms / computed pair) of FA3's bidirectional single
    pass measured in the same configuration. Needs that peer ok with its computed pairs in `notes`."""
    bound = next((r for r in records if r.variant == peer and r.ok), None)
    own_pairs = (bound.notes or {}).get("attended_pairs") if bound is not None else None
    if not own_pairs:
        return
    rate = {m: bound.median(m) / own_pairs for m in ("forward", "backward")}
    for rec in records:
        pairs = (rec.batch or {}).get("attended_pairs")
        if rec.kind != "variant" or not rec.ok or not pairs:
            continue
        rec.ideal = ideal_ratios(pairs, rec.median("forward"), rec.median("backward"), rate["forward"],
                                 rate["backward"], peer)


def paired_difference(a: list[float], b: list[float]) -> Stat:
    """Median and interval of a - b over pairs of rounds (`bench.results.stats.paired_deltas`): the same
    interleaved rounds measured both, so drift common to both cancels, and each pair of rounds ran them
    in both orders. The interval is `run_ci`'s: widened to the spread between blocks of the run where the
    delta itself drifts (records store it; the report recomputes it from the stored samples)."""
    return run_ci(paired_deltas(a, b))


def paired_difference_within(a: list[float], b: list[float]) -> Stat:
    """The same delta with the order-statistic interval alone (noise between rounds, no drift): the
    interval records held before `run_ci`, kept for the check that compares the two."""
    return median_ci(paired_deltas(a, b))


def predicted_extra_ms(rec: "Record | dict", base: "Record | dict", bw: dict) -> tuple[float, list[float]]:
    """Extra ms of `rec` over `base` from their byte differences, in units of one K/V-sized fill (or
    add) at the bandwidth probe's time; the interval comes from the probe's 95% intervals."""
    b, b0 = _bytes_of(rec), _bytes_of(base)
    d_fill, d_add = b["zero_filled"] - b0["zero_filled"], b["added"] - b0["added"]
    f, a = bw["fill_ms"], bw["add_ms"]

    def at(key: str) -> float:
        return (d_fill * f[key] + d_add / 3 * a[key]) / bw["kv_bytes"]

    return at("median"), sorted((at("lo"), at("hi")))


def _bytes_of(rec: "Record | dict") -> dict:
    return rec.bytes if isinstance(rec, Record) else rec["bytes"]


def prediction(rec: "Record", best_rec: "Record", bw: dict, best: str, measured: Stat) -> dict:
    predicted, interval = predicted_extra_ms(rec, best_rec, bw)
    return {"best_variant": best, "extra_ms_vs_best_predicted": predicted,
            "extra_ms_vs_best_predicted_interval": interval,
            "extra_ms_vs_best_measured": measured.median,
            "extra_ms_vs_best_interval": [measured.lo, measured.hi],
            "fill_gbps": bw["fill_gbps"], "add_gbps": bw["add_gbps"]}
