"""Clocks and the interleaved measurement loop.

On CUDA every timestamp is a CUDA event (GPU time, read after one synchronize per round); on CPU it
is `perf_counter` (the reference backend runs synchronously). Implementations of one configuration
are measured in rounds: each round runs every implementation once, in `round_order`, so drift
(clocks, temperature, other tenants) hits them alike and per-round differences pair up.
"""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Callable, Sequence

import torch

from prefixlm_attn.phases import observing


class Clock:
    """Timestamps on the device's timeline."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def mark(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def elapsed_ms(self, start, end) -> float:
        return start.elapsed_time(end) if self.cuda else (end - start) * 1e3


class PhaseTimer:
    """Phase observer: timestamps at each phase's begin/end; durations of repeated phases add up."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self._open: dict[str, object] = {}
        self._spans: list[tuple[str, object, object]] = []

    def begin(self, name: str) -> None:
        self._open[name] = self.clock.mark()

    def end(self, name: str) -> None:
        self._spans.append((name, self._open.pop(name), self.clock.mark()))

    def collect_ms(self) -> dict[str, float]:
        """Call after `clock.sync()`; returns and forgets this repetition's phase durations."""
        totals: dict[str, float] = defaultdict(float)
        for name, start, end in self._spans:
            totals[name] += self.clock.elapsed_ms(start, end)
        self._spans.clear()
        return dict(totals)


class L2Flusher:
    """Evicts L2 between repetitions by writing a buffer larger than it (as triton's do_bench)."""

    def __init__(self, device: torch.device, enabled: bool, bytes_: int = 256 << 20):
        self.buf = torch.empty(bytes_, dtype=torch.int8, device=device) if enabled and device.type == "cuda" else None

    def __call__(self) -> None:
        if self.buf is not None:
            self.buf.zero_()


def run_once(forward: Callable[[], torch.Tensor], dout: torch.Tensor, clear: Callable[[], None],
             clock: Clock) -> tuple:
    """One forward + backward with three timestamps (read them after a sync)."""
    clear()
    t0 = clock.mark()
    out = forward()
    t1 = clock.mark()
    out.backward(dout)
    t2 = clock.mark()
    return t0, t1, t2


Together = Sequence[tuple[str, str]]


def round_order(names: list[str], round_index: int, together: Together = ()) -> list[str]:
    """The order of round r: `names` rotated by r // 2, reversed when r is odd; each pair in
    `together` (both present) stays side by side, as one unit of the rotation.

    Why reversed: the time of a call depends on its place in a round (clocks settle under the power
    cap, the previous call's traffic), by up to a few percent at 64k tokens. Rotation alone puts
    each name at every place but runs a given pair in one order far more often than the other, so
    a paired difference picks up the place effect. Rounds 2k and 2k+1 run every pair in both
    orders, and `bench.results.stats.paired_deltas` averages them before taking medians.
    Why together: two calls far apart in a round see different clocks; on the H100 the per-round
    difference of a pair 7 places apart scattered 2-3x more than of the same pair 2 places apart."""
    units = _units(names, together)
    if not units:
        return []
    shift = (round_index // 2) % len(units)
    order = [name for unit in units[shift:] + units[:shift] for name in unit]
    return order[::-1] if round_index % 2 else order


def _units(names: list[str], together: Together) -> list[list[str]]:
    """`names` as rotation units: a pair of `together` becomes one unit at its first member's place."""
    partner: dict[str, str] = {}
    for a, b in together:
        if a != b and a in names and b in names and a not in partner and b not in partner:
            partner[a], partner[b] = b, a
    units, placed = [], set()
    for name in names:
        if name in placed:
            continue
        unit = [name, partner[name]] if name in partner else [name]
        units.append(unit)
        placed.update(unit)
    return units


def timed_round(calls: dict[str, Callable[[], torch.Tensor]], dout: torch.Tensor, clear: Callable[[], None],
                clock: Clock, flush: L2Flusher, round_index: int,
                phase_timer: PhaseTimer | None = None, together: Together = ()) -> dict[str, dict]:
    """Every implementation once, in `round_order`, each from a drained queue; {name: {forward, backward[, phases]}}.

    Drained: the GPU finishes the L2 flush and everything before it, then the host enqueues the call,
    so the GPU waits for the host's launches as it does in an eager step whose host is not ahead.
    Without the sync every call after the first of a round would find the GPU still busy with the
    one before and hide its launch cost (host overhead = eager - gpu would read ~0)."""
    marks, phases = {}, {}
    for name in round_order(list(calls), round_index, together):
        flush()
        clock.sync()
        if phase_timer is None:
            marks[name] = run_once(calls[name], dout, clear, clock)
        else:
            with observing(phase_timer):
                marks[name] = run_once(calls[name], dout, clear, clock)
            clock.sync()
            phases[name] = phase_timer.collect_ms()
    clock.sync()
    result = {}
    for name, (t0, t1, t2) in marks.items():
        result[name] = {"forward": clock.elapsed_ms(t0, t1), "backward": clock.elapsed_ms(t1, t2)}
        if name in phases:
            result[name]["phases"] = phases[name]
    return result


def time_kernel_ms(fn: Callable[[], object], clock: Clock, reps: int = 20, warmup: int = 3,
                   hold: Any = None) -> list[float]:
    """Per-call times of a single kernel-sized callable (for the fill/add bandwidth probes).

    With a stream `hold` (`bench.harness.clocks.hold`: engage/release) each call is enqueued behind it, so
    the events see GPU time only; without, each call starts from an idle queue."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(reps):
        if hold is not None:
            hold.engage()
        t0 = clock.mark()
        fn()
        t1 = clock.mark()
        if hold is not None:
            hold.release()
        clock.sync()
        samples.append(clock.elapsed_ms(t0, t1))
    return samples
