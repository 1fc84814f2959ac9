"""Where an eager call leaves the GPU idle: each call's kernels on the profiler's timeline.

Why: eager time (`timed_round`, from a drained queue) minus GPU time is host overhead, but a single
number does not say where the GPU waits, nor whether extra GPU work of one variant (a memset) lands
in such a wait and costs less eager time than GPU time. Each call is preceded by a marker kernel
(`torch.cuda._sleep`) so its kernels can be cut out of one profile; per call this reports the span
from its first kernel's start to its last kernel's end, the busy time inside it, and the gaps.
"""
from __future__ import annotations

from statistics import median
from typing import Any, Callable

import torch

from bench.harness.clocks.kernel_sum import device_activities
from bench.harness.timing import Clock

MARKER = "spin_kernel"          # the kernel torch.cuda._sleep launches
MIN_GAP_US = 5.0                # idle shorter than this is launch granularity, not waiting


def _device_kernels(prof) -> list[tuple[float, float, str]]:
    return sorted((e.time_range.start, e.time_range.end, e.name) for e in device_activities(prof))


def split_calls(kernels: list[tuple[float, float, str]]) -> list[list[tuple[float, float, str]]]:
    """Kernels between consecutive markers (the marker itself left out)."""
    calls, current = [], None
    for k in kernels:
        if MARKER in k[2]:
            if current:
                calls.append(current)
            current = []
        elif current is not None:
            current.append(k)
    if current:
        calls.append(current)
    return calls


def call_gaps(kernels: list[tuple[float, float, str]]) -> dict[str, Any]:
    """Span, busy time and the idle gaps (us) of one call's kernels, each gap with the kernels around it."""
    span = kernels[-1][1] - kernels[0][0]
    busy, gaps, end = 0.0, [], kernels[0][0]
    for i, (s, e, name) in enumerate(kernels):
        if s - end >= MIN_GAP_US and i > 0:
            gaps.append({"us": s - end, "after": kernels[i - 1][2][:60], "before": name[:60], "index": i})
        busy += max(0.0, e - max(s, end))
        end = max(end, e)
    return {"span_us": span, "busy_us": busy, "idle_us": span - busy, "kernels": len(kernels), "gaps": gaps}


def eager_gaps(calls: dict[str, Callable[[], torch.Tensor]], dout: torch.Tensor, clear: Callable[[], None],
               reps: int = 20) -> dict[str, Any]:
    """Drained-queue calls of every implementation, alternating, inside one profile; per implementation
    the median span, busy and idle time (ms), its event time, and the median size of each gap by place."""
    from torch.profiler import ProfilerActivity, profile
    clock = Clock(torch.device("cuda"))
    names = list(calls)
    for name in names:                           # warm: lazy loads, allocator
        clear()
        calls[name]().backward(dout)
    torch.cuda.synchronize()
    event_ms: dict[str, list[float]] = {n: [] for n in names}
    order = []
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for i in range(reps):
            for name in (names if i % 2 == 0 else names[::-1]):
                clear()
                torch.cuda._sleep(1000)
                torch.cuda.synchronize()
                t0 = clock.mark()
                calls[name]().backward(dout)
                t2 = clock.mark()
                torch.cuda.synchronize()
                event_ms[name].append(t0.elapsed_time(t2))
                order.append(name)
    per_call = [call_gaps(k) for k in split_calls(_device_kernels(prof)) if k]
    if len(per_call) != len(order):
        raise RuntimeError(f"found {len(per_call)} calls on the timeline, expected {len(order)}")
    out: dict[str, Any] = {}
    for name in names:
        mine = [c for c, n in zip(per_call, order) if n == name]
        by_place: dict[str, list[float]] = {}
        for c in mine:
            for g in c["gaps"]:
                by_place.setdefault(f"{g['after']} -> {g['before']}", []).append(g["us"])
        out[name] = {"event_ms": median(event_ms[name]), "span_ms": median(c["span_us"] for c in mine) / 1e3,
                     "busy_ms": median(c["busy_us"] for c in mine) / 1e3,
                     "idle_ms": median(c["idle_us"] for c in mine) / 1e3,
                     "kernels": median(c["kernels"] for c in mine),
                     "gaps_us": {k: {"median": median(v), "calls": len(v)} for k, v in
                                 sorted(by_place.items(), key=lambda kv: -median(kv[1]))[:8]}}
    return out
