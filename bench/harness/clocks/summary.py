"""Statistics of interleaved samples, and the timing fields of one implementation's record.

Per direction (forward, backward, and their per-round sum fwd_bwd) and clock: the median with its
distribution-free interval. Host overhead is eager - gpu, paired by round (`median_ci` of the
per-round differences), so drift common to both clocks cancels.
"""
from __future__ import annotations

from typing import Any

from bench.harness.clocks.interleave import ClockSet, Interleaved
from bench.results.derived import with_fwd_bwd
from bench.results.stats import Stat, median_ci, paired_deltas

DIRECTIONS = ("forward", "backward", "fwd_bwd")


def direction_stats(series: dict[str, list[float]]) -> dict[str, Stat]:
    full = with_fwd_bwd(series)
    return {d: median_ci(full[d]) for d in DIRECTIONS}


def paired_difference(a: dict[str, list[float]], b: dict[str, list[float]]) -> dict[str, Stat]:
    """a - b per round and direction: the same rounds measured both series."""
    fa, fb = with_fwd_bwd(a), with_fwd_bwd(b)
    if len(fa["forward"]) != len(fb["forward"]):
        raise ValueError(f"unpaired series: {len(fa['forward'])} vs {len(fb['forward'])} rounds")
    return {d: median_ci(paired_deltas(fa[d], fb[d])) for d in DIRECTIONS}


def host_overhead(result: Interleaved, name: str) -> dict[str, Stat] | None:
    """eager - gpu for one implementation, paired by round; None unless both clocks measured it."""
    gpu, eager = result.samples_ms.get("gpu", {}).get(name), result.samples_ms.get("eager", {}).get(name)
    if gpu is None or eager is None:
        return None
    return paired_difference(eager, gpu)


def timing_fields(clock_set: ClockSet, result: Interleaved, name: str) -> dict[str, Any]:
    """What a record says about one implementation's timing: mode, notes, one stat per clock and direction.

    `timings_ms[clock][direction]` is a Stat dict, or `{"error": ...}` where the clock could not
    measure this implementation (a graph that failed to capture). `gpu_method` is "held", or
    "amortized" when the call synchronized inside its enqueue.
    """
    timings: dict[str, Any] = {}
    for clock in clock_set.plan.series:
        series = result.samples_ms.get(clock, {}).get(name)
        if series is None:
            timings[clock] = {"error": clock_set.impl_note(clock, name) or "not measured"}
        else:
            timings[clock] = {d: s.as_dict() for d, s in direction_stats(series).items()}
    overhead = host_overhead(result, name)
    fields: dict[str, Any] = {
        "timing_mode": clock_set.plan.mode,
        "timing_note": clock_set.plan.note,
        "timings_ms": timings,
        "host_overhead_ms": {d: s.as_dict() for d, s in overhead.items()} if overhead else None,
    }
    if "gpu" in clock_set.plan.series:
        fallback = clock_set.impl_note("gpu", name)
        fields["gpu_method"] = "amortized" if fallback else "held"
        fields["gpu_note"] = fallback
    return fields
