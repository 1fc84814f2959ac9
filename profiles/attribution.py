"""Device activities attributed to annotated ranges, and their per-variant, per-range totals.

Both profiler paths (nsys SQLite, torch.profiler) turn their output into `Activity` rows: one kernel,
memset or memcpy (or CPU op) with its duration and the stack of ranges that enclosed its launch,
outermost first ("config:<id>", "rep:<variant>:<i>", "bwd.zero_fill"). `aggregate` sums them into the
breakdown's shape.
"""
from __future__ import annotations

from bisect import insort
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from bench.spec.names import OUTSIDE_PHASES  # noqa: F401 - the name printers share

REP_PREFIX = "rep:"
CONFIG_PREFIX = "config:"


@dataclass(frozen=True)
class Activity:
    name: str                    # kernel name, "memset", "memcpy DtoD", or a CPU op
    kind: str                    # "kernel" | "memset" | "memcpy" | "cpu_op"
    duration_ns: int
    stack: tuple[str, ...]       # enclosing ranges, outermost first
    bytes: Optional[int] = None
    short_name: Optional[str] = None


@dataclass(frozen=True)
class Span:
    """A range on one thread: [start, end] in ns."""
    name: str
    start: int
    end: int


def rep_variant(stack: Sequence[str]) -> Optional[tuple[str, int]]:
    """(variant, rep index) from the "rep:<variant>:<i>" range in a stack, if any."""
    for name in stack:
        if name.startswith(REP_PREFIX):
            variant, _, index = name[len(REP_PREFIX):].rpartition(":")
            if variant and index.isdigit():
                return variant, int(index)
    return None


def is_global(name: str) -> bool:
    """config/rep ranges hold for every thread (backward kernels launch from the autograd thread)."""
    return name.startswith((REP_PREFIX, CONFIG_PREFIX))


def leaf_range(stack: Sequence[str]) -> str:
    """The innermost range that is neither a config nor a rep wrapper (a phase, usually)."""
    for name in reversed(stack):
        if not is_global(name):
            return name
    return OUTSIDE_PHASES


def enclosing_stacks(spans: Iterable[Span], times: Sequence[int]) -> list[tuple[str, ...]]:
    """For each time (same thread as `spans`), the ranges containing it, outermost first.

    A sweep over time: ranges open at their start and close after their end; nested ranges sort
    by start, so the innermost is last. Ties: a range starting at t contains t; one ending at t too.
    """
    events: list[tuple[int, int, int]] = []     # (time, order, index): open=0, query=1, close=2
    span_list = list(spans)
    for i, s in enumerate(span_list):
        events.append((s.start, 0, i))
        events.append((s.end, 2, i))
    for j, t in enumerate(times):
        events.append((t, 1, j))
    events.sort()
    active: list[tuple[int, int, int]] = []     # (start, -end, index) so outer ranges sort first
    result: list[tuple[str, ...]] = [()] * len(times)
    for _, order, idx in events:
        if order == 0:
            s = span_list[idx]
            insort(active, (s.start, -s.end, idx))
        elif order == 2:
            s = span_list[idx]
            active.remove((s.start, -s.end, idx))
        else:
            result[idx] = tuple(span_list[i].name for _, _, i in active)
    return result


def global_spans(spans_by_thread: dict[int, list[Span]]) -> list[Span]:
    """The config/rep spans of every thread (compute once, pass to each `thread_stacks` call)."""
    return [s for spans in spans_by_thread.values() for s in spans if is_global(s.name)]


def thread_stacks(spans_by_thread: dict[int, list[Span]], thread: int, times: Sequence[int],
                  shared: Optional[Sequence[Span]] = None) -> list[tuple[str, ...]]:
    """Stacks for launch times on `thread`: config/rep ranges from any thread (by time), then the
    thread's own ranges (phases are pushed on the thread that runs the op's forward or backward).
    `shared`: `global_spans(spans_by_thread)`, precomputed by callers that ask for many threads."""
    if shared is None:
        shared = global_spans(spans_by_thread)
    local = [s for s in spans_by_thread.get(thread, []) if not is_global(s.name)]
    return [g + l for g, l in zip(enclosing_stacks(shared, times), enclosing_stacks(local, times))]


def aggregate(activities: Iterable[Activity], reps: int) -> dict[str, dict]:
    """{variant: {"ranges": {range: {"gpu_ms", "kernels": {name: {"count", "ms"}}, "bytes"}}}}.

    Milliseconds and counts are per repetition (totals over the reps / reps); activities outside
    any "rep:" range (warm-up, setup) are left out.
    """
    per_rep = 1.0 / max(reps, 1)
    variants: dict[str, dict] = defaultdict(lambda: {"ranges": {}})
    for act in activities:
        rv = rep_variant(act.stack)
        if rv is None:
            continue
        ranges = variants[rv[0]]["ranges"]
        entry = ranges.setdefault(leaf_range(act.stack), {"gpu_ms": 0.0, "kernels": {}, "bytes": None})
        ms = act.duration_ns / 1e6 * per_rep
        entry["gpu_ms"] += ms
        kernel = entry["kernels"].setdefault(act.name, {"count": 0.0, "ms": 0.0, "kind": act.kind})
        if act.short_name:
            kernel["short_name"] = act.short_name
        kernel["count"] += per_rep
        kernel["ms"] += ms
        if act.bytes is not None:
            entry["bytes"] = (entry["bytes"] or 0) + act.bytes * per_rep
    return {v: variants[v] for v in sorted(variants)}


def difference(variants: dict[str, dict], order: Sequence[str]) -> Optional[dict[str, float]]:
    """order[1] minus order[0], per range (ms per rep), when exactly two variants ran."""
    if len(order) != 2:
        return None
    a, b = (variants.get(name, {"ranges": {}}) for name in order)
    names = sorted(set(a["ranges"]) | set(b["ranges"]))
    return {n: b["ranges"].get(n, {}).get("gpu_ms", 0.0) - a["ranges"].get(n, {}).get("gpu_ms", 0.0)
            for n in names}
