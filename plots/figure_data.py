"""The numbers behind each figure, as pure functions of records (tested instead of pixels)."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from bench.results.records import Record
from bench.spec.names import BLOCK_PREFIX
from plots.records import by_config, config_sort_key

PHASE_SEGMENTS: dict[str, tuple[str, ...]] = {
    "alloc + zero-fill": ("bwd.alloc", "bwd.zero_fill"),
    "bidirectional pass": ("bwd.bidir_pass",),
    "causal pass": ("bwd.causal_pass",),
    "single pass": ("bwd.single_pass",),
    "accumulate": ("bwd.accumulate",),
}
OUTCOME_ORDER = ("ok", "unwritten", "wrong", "crashed")  # later = worse; a cell shows its worst outcome


def _variants_ok(records: list[Record]) -> list[Record]:
    return [r for r in records if r.kind == "variant" and r.ok and r.median("backward") is not None]


def best_variant(group: list[Record]) -> Record | None:
    """The configuration's best variant: the one its records name, else the lowest backward median."""
    candidates = _variants_ok(group)
    if not candidates:
        return None
    named = {(r.prediction or {}).get("best_variant") for r in candidates} - {None}
    for rec in candidates:
        if rec.variant in named:
            return rec
    return min(candidates, key=lambda r: r.median("backward"))


def _sorted_groups(records: list[Record]) -> list[list[Record]]:
    return sorted(by_config(records).values(), key=lambda g: config_sort_key(g[0]))


def hot_path_cost(records: list[Record], baseline: str | None = None) -> dict[str, dict[str, list[dict[str, float]]]]:
    """distribution -> variant -> [{tokens, ratio, lo, hi}]: backward time over a fixed baseline variant's.

    The baseline is the same variant in every configuration (the study's baseline, default the first
    variant of each group that the study names), so the curves do not jump when the fastest variant
    changes between runs. The interval is paired per pair of rounds where both carry samples, else the
    ratio of the two confidence intervals (lo = v.lo / base.hi, hi = v.hi / base.lo).
    """
    from bench.spec.study import load_study
    from plots.deltas import paired
    baseline = baseline or load_study().baseline
    out: dict[str, dict[str, list[dict[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for group in _sorted_groups(records):
        ok = {r.variant: r for r in _variants_ok(group)}
        base = ok.get(baseline)
        if base is None:
            continue
        b = base.stat("backward")
        for rec in ok.values():
            v = rec.stat("backward")
            d = None if rec is base else paired((rec.samples_ms or {}).get("backward"),
                                                 (base.samples_ms or {}).get("backward"))
            if rec is base:
                ratio = lo = hi = 1.0
            elif d is not None and d.stat is not None:
                ratio, lo, hi = (1 + d.stat.median / b.median, 1 + d.stat.lo / b.median, 1 + d.stat.hi / b.median)
            elif (extra := rec.stat("extra_vs_best")) is not None and \
                    (rec.prediction or {}).get("best_variant") == baseline:   # paired against this baseline
                ratio, lo, hi = 1 + extra.median / b.median, 1 + extra.lo / b.median, 1 + extra.hi / b.median
            else:
                ratio, lo, hi = v.median / b.median, v.lo / b.hi, v.hi / b.lo
            out[rec.distribution][rec.variant].append(
                {"tokens": rec.tokens, "ratio": ratio, "lo": lo, "hi": hi, "baseline": baseline})
    return {d: dict(v) for d, v in out.items()}


def phase_breakdown(records: list[Record]) -> list[dict[str, Any]]:
    """Per configuration and variant: backward phase medians in stacked segments, ms.

    `other` = backward median minus the named segments (launch gaps, pad_zero, Python); it may be
    slightly negative when phase timers overlap, and is kept raw here.
    """
    rows = []
    for group in _sorted_groups(records):
        for rec in _variants_ok(group):
            phases = rec.timings_ms.phases
            if not any(k.startswith("bwd.") for k in phases):
                continue
            segments = {name: sum(rec.median(k) or 0.0 for k in keys) for name, keys in PHASE_SEGMENTS.items()}
            # a segment's interval: the sum of its phases' interval ends (phases are timed together per round)
            lo = {name: sum(rec.stat(k).lo for k in keys if rec.stat(k)) for name, keys in PHASE_SEGMENTS.items()}
            hi = {name: sum(rec.stat(k).hi for k in keys if rec.stat(k)) for name, keys in PHASE_SEGMENTS.items()}
            segments["other"] = rec.median("backward") - sum(segments.values())
            rows.append({"config_id": rec.config_id, "distribution": rec.distribution,
                         "tokens": rec.tokens, "variant": rec.variant, "segments_ms": segments,
                         "segments_lo": lo, "segments_hi": hi})
    return rows


def zero_fill_floor_ms(rec: Record) -> float | None:
    """Time the recorded zero-filled bytes take at the measured fill bandwidth, ms."""
    zero_filled = (rec.bytes or {}).get("zero_filled")
    fill_gbps = (rec.prediction or {}).get("fill_gbps")
    if zero_filled is None or not fill_gbps:
        return None
    return zero_filled / (fill_gbps * 1e9) * 1e3


def scaling(records: list[Record]) -> dict[str, dict[str, dict[str, list[dict[str, float]]]]]:
    """distribution -> {"backward": variant -> [{tokens, median, lo, hi}], "floor": variant -> [{tokens, floor_ms}]}."""
    out: dict[str, dict[str, dict[str, list]]] = {}
    for group in _sorted_groups(records):
        for rec in _variants_ok(group):
            d = out.setdefault(rec.distribution, {"backward": defaultdict(list), "floor": defaultdict(list)})
            s = rec.stat("backward")
            d["backward"][rec.variant].append({"tokens": rec.tokens, "median": s.median,
                                                "lo": s.lo, "hi": s.hi})
            floor = zero_fill_floor_ms(rec)
            if floor:  # a variant that fills nothing has no floor line
                d["floor"][rec.variant].append({"tokens": rec.tokens, "floor_ms": floor})
    return {k: {"backward": dict(v["backward"]), "floor": dict(v["floor"])} for k, v in out.items()}


def predicted_vs_measured(records: list[Record]) -> list[dict[str, Any]]:
    """One point per variant record with a prediction: predicted and measured extra ms vs the best variant."""
    points = []
    for rec in records:
        pred = rec.prediction or {}
        p, m = pred.get("extra_ms_vs_best_predicted"), pred.get("extra_ms_vs_best_measured")
        if rec.ok and rec.kind == "variant" and p is not None and m is not None:
            m_lo, m_hi = pred.get("extra_ms_vs_best_interval") or (m, m)
            p_lo, p_hi = pred.get("extra_ms_vs_best_predicted_interval") or (p, p)
            points.append({"config_id": rec.config_id, "variant": rec.variant, "distribution":
                           rec.distribution, "tokens": rec.tokens, "predicted_ms": p, "measured_ms": m,
                           "predicted_lo": p_lo, "predicted_hi": p_hi, "measured_lo": m_lo, "measured_hi": m_hi})
    return points


def boundary_matrix(validation: list[dict[str, Any]]) -> dict[str, Any]:
    """Variant x pattern -> worst outcome seen, how many cases, and whether failure was expected."""
    variants: dict[str, None] = {}
    patterns: dict[str, None] = {}
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for row in validation:
        v, p, outcome = row["variant"], row["pattern"], row["outcome"]
        variants.setdefault(v, None)
        patterns.setdefault(p, None)
        cell = cells.setdefault((v, p), {"outcome": "ok", "cases": 0, "expected_to_fail": False})
        cell["cases"] += 1
        cell["expected_to_fail"] |= bool(row.get("expected_to_fail"))
        rank = OUTCOME_ORDER.index(outcome) if outcome in OUTCOME_ORDER else len(OUTCOME_ORDER)
        if rank > (OUTCOME_ORDER.index(cell["outcome"]) if cell["outcome"] in OUTCOME_ORDER else len(OUTCOME_ORDER)):
            cell["outcome"] = outcome
    return {"variants": list(variants), "patterns": list(patterns), "cells": cells}


def own_work_tflops(rec: Record) -> tuple[float | None, float | None]:
    """TFLOP/s on the pairs an implementation itself computes (the bounds do less or more than
    PrefixLM); `tflops` in the record is on the PrefixLM pair count of the workload."""
    tf = rec.tflops or {}
    own = (rec.notes or {}).get("attended_pairs")
    prefixlm = (rec.batch or {}).get("attended_pairs")
    if not own or not prefixlm:
        return tf.get("forward"), tf.get("backward")
    scale = own / prefixlm
    return tuple(None if tf.get(k) is None else tf[k] * scale for k in ("forward", "backward"))


def peers(records: list[Record]) -> list[dict[str, Any]]:
    """Per configuration that has peers: each implementation's forward/backward ms and TFLOP/s."""
    rows = []
    for group in _sorted_groups(records):
        if not any(r.kind == "peer" for r in group):
            continue
        impls = []
        for rec in group:
            if not rec.ok or rec.variant.startswith(BLOCK_PREFIX):   # a whole block: another workload's scale
                continue
            tf = rec.tflops or {}
            own = own_work_tflops(rec)
            fwd, bwd = rec.stat("forward"), rec.stat("backward")
            impls.append({"name": rec.variant, "kind": rec.kind,
                          "forward_ms": rec.median("forward"), "backward_ms": rec.median("backward"),
                          "forward_lo": fwd.lo if fwd else None, "forward_hi": fwd.hi if fwd else None,
                          "backward_lo": bwd.lo if bwd else None, "backward_hi": bwd.hi if bwd else None,
                          "forward_tflops": tf.get("forward"), "backward_tflops": tf.get("backward"),
                          "forward_tflops_own": own[0], "backward_tflops_own": own[1],
                          "setup_ms": rec.setup_ms})
        rows.append({"config_id": group[0].config_id, "distribution": group[0].distribution,
                     "tokens": group[0].tokens, "implementations": impls})
    return rows


# ---- each figure's data as flat rows (figures/<name>.csv) -------------------------------------------

def _hot_path_rows(records: list[Record], validation: list[dict]) -> list[dict[str, Any]]:
    return [{"distribution": d, "variant": v, **p} for d, per in hot_path_cost(records).items()
            for v, pts in per.items() for p in pts]


def _phase_rows(records: list[Record], validation: list[dict]) -> list[dict[str, Any]]:
    return [{"config_id": r["config_id"], "distribution": r["distribution"], "tokens": r["tokens"],
             "variant": r["variant"], "segment": seg, "median_ms": ms, "lo_ms": r["segments_lo"].get(seg),
             "hi_ms": r["segments_hi"].get(seg)}
            for r in phase_breakdown(records) for seg, ms in r["segments_ms"].items()]


def _boundary_rows(records: list[Record], validation: list[dict]) -> list[dict[str, Any]]:
    return [{"variant": v, "pattern": p, **cell} for (v, p), cell in boundary_matrix(validation)["cells"].items()]


def _peer_rows(records: list[Record], validation: list[dict]) -> list[dict[str, Any]]:
    return [{"config_id": r["config_id"], "distribution": r["distribution"], "tokens": r["tokens"], **i}
            for r in peers(records) for i in r["implementations"]]


FIGURE_ROWS = {
    "hot_path_cost": _hot_path_rows,
    "phases": _phase_rows,
    "boundary": _boundary_rows,
    "peers": _peer_rows,
}


def figure_rows(name: str, records: list[Record], validation: list[dict]) -> list[dict[str, Any]]:
    """The numbers one figure draws, one flat row per point / bar."""
    return FIGURE_ROWS[name](records, validation)
