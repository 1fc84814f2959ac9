"""Evidence that the gpu clock measures GPU work: checks run on a CUDA device.

- `held_vs_kernels`: held fwd+bwd beside the profiler's kernel sum of the same calls in the same
  process (they should agree), and beside eager (which should sit above: it waits for the host);
- `graph_pair`: graph replays of two implementations in interleaved rounds, with their paired ratio;
- `detection`: calls that synchronize inside their enqueue are caught and timed amortized.
"""
from __future__ import annotations

from typing import Any

import torch

from bench.harness.clocks.hold import StreamHold, build_hold
from bench.harness.clocks.interleave import build_clock_set, measure_interleaved
from bench.harness.clocks.kernel_sum import device_activity_ms, profiler_kernel_ms
from bench.harness.clocks.plan import plan_timing
from bench.harness.clocks.rounds import HeldRounds
from bench.harness.clocks.summary import direction_stats, host_overhead, paired_difference, with_fwd_bwd
from bench.spec.grid import Config
from bench.harness.registry import registry
from bench.harness.workloads import Workload, build_workload
from bench.results.stats import StoppingRule, median_ci
from bench.harness.timing import Clock, L2Flusher


def _calls(w: Workload, names: list[str], backend: str) -> dict:
    return {n: registry()[n].prepare(w, backend).forward for n in names}


def held_vs_kernels(config: Config, names: list[str], backend: str, rule: StoppingRule, hold: StreamHold,
                    warmup: int = 3, profile_reps: int = 10) -> dict[str, Any]:
    """gpu and eager rounds interleaved, then the profiler's kernel sum of each implementation's call."""
    w = build_workload(config, "cuda")
    calls = _calls(w, names, backend)
    clock = Clock(w.device)
    clock_set = build_clock_set(plan_timing("gpu", "cuda"), calls, w.dout, w.clear_grads, clock,
                                L2Flusher(w.device, False), hold=hold)
    result = measure_interleaved(clock_set, rule, warmup)
    rows = []
    for name in names:
        def call(forward=calls[name]) -> None:
            w.clear_grads()
            forward().backward(w.dout)
        kernels = profiler_kernel_ms(call, reps=profile_reps)
        gpu = direction_stats(result.samples_ms["gpu"][name])["fwd_bwd"]
        eager = direction_stats(result.samples_ms["eager"][name])["fwd_bwd"]
        overhead = host_overhead(result, name)["fwd_bwd"]
        rows.append({"config": config.config_id, "impl": name, "gpu_ms": gpu.as_dict(), "eager_ms": eager.as_dict(),
                     "host_overhead_ms": overhead.as_dict(), **kernels,
                     "gpu_vs_kernels": gpu.median / kernels["kernel_sum_ms"] - 1,
                     "eager_vs_kernels": eager.median / kernels["kernel_sum_ms"] - 1,
                     "gpu_method": "amortized" if clock_set.impl_note("gpu", name) else "held",
                     "enqueue_ms": median_ci(clock_set.rounds["gpu"].enqueue_ms[name]).as_dict()})
    deltas = {}
    if len(names) == 2:
        a, b = names[1], names[0]
        for clock_name in ("gpu", "eager"):
            s = result.samples_ms[clock_name]
            deltas[f"{a} - {b} ({clock_name})"] = paired_difference(s[a], s[b])["fwd_bwd"].as_dict()
    return {"rows": rows, "paired_deltas_ms": deltas, "rounds": result.rounds, "stop_reason": result.stop_reason}


def held_under_profiler(config: Config, names: list[str], backend: str, hold: StreamHold,
                        reps: int = 20) -> list[dict[str, Any]]:
    """The same held calls seen two ways at once: their event times and the profiler's kernel sum.

    Each implementation's held rounds run inside one profile, so both numbers describe identical
    calls at identical clocks (no drift between a timing pass and a later profiling pass); the spin
    kernel that holds the stream is left out of the sum.
    """
    from torch.profiler import ProfilerActivity, profile
    w = build_workload(config, "cuda")
    calls = _calls(w, names, backend)
    rows = []
    for name in names:
        held = HeldRounds({name: calls[name]}, w.dout, w.clear_grads, Clock(w.device), lambda: None, hold)
        for i in range(3):
            held(i)                                  # warm: lazy kernel loads, allocator
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            samples = [held(i)[name] for i in range(reps)]
            torch.cuda.synchronize()
        kernels_ms, count, _ = device_activity_ms(prof, exclude=("spin_until_released",))
        events_ms = sum(s["forward"] + s["backward"] for s in samples)
        rows.append({"config": config.config_id, "impl": name, "reps": reps,
                     "held_events_ms_per_call": events_ms / reps, "kernel_sum_ms_per_call": kernels_ms / reps,
                     "held_vs_kernels": events_ms / kernels_ms - 1, "activities_per_call": count / reps,
                     "gpu_method": "amortized" if held.fallbacks else "held"})
    return rows


def graph_pair(config: Config, names: list[str], backend: str, rule: StoppingRule, hold: StreamHold,
               warmup: int = 3) -> dict[str, Any]:
    """All three clocks interleaved for two implementations; graph medians and their paired ratio."""
    w = build_workload(config, "cuda")
    calls = _calls(w, names, backend)
    clock_set = build_clock_set(plan_timing("gpu", "cuda", cuda_graph=True), calls, w.dout, w.clear_grads,
                                Clock(w.device), L2Flusher(w.device, False), hold=hold)
    result = measure_interleaved(clock_set, rule, warmup)
    out: dict[str, Any] = {"config": config.config_id, "rounds": result.rounds, "stop_reason": result.stop_reason,
                           "errors": clock_set.notes.get("graph", {}), "medians_ms": {}}
    for clock_name, per_impl in result.samples_ms.items():
        for name, series in per_impl.items():
            out["medians_ms"][f"{name} ({clock_name})"] = direction_stats(series)["fwd_bwd"].as_dict()
    a, b = names
    graphs = result.samples_ms.get("graph", {})
    if a in graphs and b in graphs:
        fa, fb = with_fwd_bwd(graphs[a])["fwd_bwd"], with_fwd_bwd(graphs[b])["fwd_bwd"]
        out["graph_ratio"] = median_ci([x / y for x, y in zip(fa, fb)]).as_dict()   # a / b per round
    return out


def detection(config: Config, backend: str, timeout_s: float = 0.1, rounds: int = 3) -> dict[str, Any]:
    """A plain call, one that calls torch.cuda.synchronize() and one that reads `.item()`: which fall back."""
    w = build_workload(config, "cuda")
    forward = _calls(w, ["guarded_passthrough"], backend)["guarded_passthrough"]
    device_scalar = w.meta.cu_seqlens[-1]

    def synchronizes() -> torch.Tensor:
        out = forward()
        torch.cuda.synchronize()
        return out

    def reads_item() -> torch.Tensor:
        int(device_scalar.item())
        return forward()

    calls = {"plain": forward, "synchronize": synchronizes, "item": reads_item}
    hold, note = build_hold(timeout_s)
    if hold is None:
        raise RuntimeError(note)
    held = HeldRounds(calls, w.dout, w.clear_grads, Clock(w.device), L2Flusher(w.device, False), hold)
    samples = [held(i) for i in range(rounds)]
    return {"config": config.config_id, "hold": hold.kind, "hold_note": note, "timeout_s": timeout_s,
            "fallbacks": dict(held.fallbacks),
            "fwd_bwd_ms": {n: [round(s[n]["forward"] + s[n]["backward"], 4) for s in samples] for n in calls},
            "enqueue_ms": {n: [round(x, 3) for x in v] for n, v in held.enqueue_ms.items()}}
