"""Rounds of every clock, interleaved, under one stopping rule.

Iteration i runs one round of each clock in the plan (gpu, eager, graph), the clocks in
`round_order(clocks, i)` as the implementations are inside each round (rotated, reversed on odd
iterations, so every pair runs in both orders). Drift (clocks, temperature, tenants) hits
every clock and implementation alike, and samples of one iteration pair up across clocks: host
overhead is eager - gpu per iteration, and the stopping rule waits for every series.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from prefixlm_attn.backends.base import Unavailable
from bench.harness.clocks.hold import DEFAULT_TIMEOUT_S, StreamHold, build_hold
from bench.harness.clocks.plan import TimingPlan
from bench.harness.clocks.rounds import EagerRounds, EventClock, Forward, GraphRounds, HeldRounds, RoundResult
from bench.harness.timing import round_order
from bench.results.stats import StoppingRule, paired_deltas

RoundFn = Callable[[int], RoundResult]
Samples = dict[str, dict[str, dict[str, list[float]]]]     # clock -> implementation -> direction -> per round


@dataclass
class ClockSet:
    """The round function of every clock the plan kept, and what each had to say."""
    plan: TimingPlan
    rounds: dict[str, RoundFn]
    notes: dict[str, dict[str, str]] = field(default_factory=dict)   # clock -> implementation -> note

    def impl_note(self, clock: str, name: str) -> str | None:
        return self.notes.get(clock, {}).get(name)


def build_clock_set(plan: TimingPlan, calls: dict[str, Forward], dout: torch.Tensor, clear: Callable[[], None],
                    clock: EventClock, flush: Callable[[], None], hold: StreamHold | None = None,
                    hold_timeout_s: float = DEFAULT_TIMEOUT_S, together: tuple[tuple[str, str], ...] = ()
                    ) -> ClockSet:
    """Round functions for `plan` (graphs are captured here); a hold that cannot be built demotes gpu to eager.
    `together`: pairs of implementations every clock runs side by side (`bench.harness.timing.round_order`)."""
    if "gpu" in plan.series and hold is None:
        hold, hold_note = build_hold(hold_timeout_s)
        if hold is None:
            plan = plan.demoted(Unavailable(hold_note or "no stream hold"))
        elif hold_note:
            plan = TimingPlan(plan.mode, plan.series, "; ".join(n for n in (plan.note, hold_note) if n))
    rounds: dict[str, RoundFn] = {}
    for name in plan.series:
        if name == "gpu":
            rounds[name] = HeldRounds(calls, dout, clear, clock, flush, hold, together=together)
        elif name == "eager":
            rounds[name] = EagerRounds(calls, dout, clear, clock, flush, together)
        elif name == "graph":
            rounds[name] = GraphRounds.capture(calls, dout, clear, clock, flush, together)
    clock_set = ClockSet(plan, rounds)
    clock_set.notes = live_notes(clock_set)
    return clock_set


def live_notes(clock_set: ClockSet) -> dict[str, dict[str, str]]:
    """Held calls that fell back to amortized timing, graphs that failed to capture (read after measuring)."""
    notes: dict[str, dict[str, str]] = {}
    for name, fn in clock_set.rounds.items():
        if isinstance(fn, HeldRounds) and fn.fallbacks:
            notes[name] = dict(fn.fallbacks)
        if isinstance(fn, GraphRounds) and fn.errors:
            notes[name] = dict(fn.errors)
    return notes


@dataclass
class Interleaved:
    samples_ms: Samples
    rounds: int
    stop_reason: str
    measure_s: float


def paired_backward_deltas(samples: Samples, clock: str, pairs: Sequence[tuple[str, str]]) -> list[list[float]]:
    """Backward a - b on `clock` for each pair, as `bench.results.stats.paired_deltas` (pairs of rounds)."""
    per_impl = samples.get(clock, {})
    return [paired_deltas(per_impl[a]["backward"], per_impl[b]["backward"])
            for a, b in pairs if a in per_impl and b in per_impl]


def measure_interleaved(clock_set: ClockSet, rule: StoppingRule, warmup: int,
                        watch: tuple[str, ...] | None = None, delta_clock: str = "",
                        delta_pairs: Sequence[tuple[str, str]] = ()) -> Interleaved:
    """Warm-up iterations, then iterations until `rule` stops on every (clock, implementation, direction).

    `watch` names the clocks whose series the rule waits for (None: all). The sweep watches the
    mode's clock and graph: eager rides along in the same iterations (paired, never waited for),
    since its host-launch jitter would otherwise hold every configuration to the time cap.
    `delta_pairs` are paired backward differences on `delta_clock` the rule also waits for."""
    order = list(clock_set.rounds)
    for i in range(warmup):
        for name in round_order(order, i):
            clock_set.rounds[name](i)
    samples: Samples = {name: {} for name in order}
    start, rounds, stop_reason = time.perf_counter(), 0, None
    while stop_reason is None:
        for name in round_order(order, rounds):
            for impl, r in clock_set.rounds[name](rounds).items():
                series = samples[name].setdefault(impl, {"forward": [], "backward": []})
                series["forward"].append(r["forward"])
                series["backward"].append(r["backward"])
        rounds += 1
        every = [s for clock, per_impl in samples.items() if watch is None or clock in watch
                 for d in per_impl.values() for s in d.values()]
        deltas = paired_backward_deltas(samples, delta_clock, delta_pairs) if delta_pairs else []
        stop_reason = rule.verdict(every, time.perf_counter() - start, deltas) if every else "no_samples"
    clock_set.notes = live_notes(clock_set)
    return Interleaved(samples, rounds, stop_reason, time.perf_counter() - start)
