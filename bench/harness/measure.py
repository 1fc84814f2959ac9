"""What runs inside the isolated worker: probe one implementation, measure a configuration.

Functions here take and return picklable data (they cross a process boundary): the parent packs
each configuration's batch once and sends it with the configuration. The workload of the
last configuration is cached, so probing five implementations builds the tensors once.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any, Optional

import torch

from bench.harness.clocks.hold import build_hold
from bench.harness.clocks.interleave import build_clock_set, measure_interleaved, paired_backward_deltas
from bench.harness.clocks.plan import plan_timing
from bench.harness.gpu_clocks import gpu_clocks   # NVML in-process, nvidia-smi as fallback
from bench.spec.grid import Config, TimingOptions
from bench.harness.implementations import Prepared
from bench.harness.peers.base import PeerUnsupported
from bench.harness.registry import registry
from bench.harness.workloads import Workload, build_workload
from bench.results.samples import MeasuredSamples
from bench.spec.packing import PackedBatch
from bench.results.stats import StoppingRule, median, median_ci, run_ci
from prefixlm_attn.backends.registry import compiled_kernel_count
from bench.harness.timing import Clock, L2Flusher, PhaseTimer, time_kernel_ms, timed_round

_cache: dict[str, Workload] = {}
_prepared: dict[tuple[str, str], Prepared] = {}   # (implementation, backend) for the cached workload
_hold: Any = None                                  # (StreamHold | None, note): built once per worker
PROBE_REPS = 100                           # fill/add pairs: ~8-30 us each, so cheap; 30 left 20% noise at 16k
TEST_DIE_ENV = "PREFIXBENCH_TEST_DIE_ON"   # tests: "config_id|impl" makes the worker exit hard


def _workload(config: Config, batch: PackedBatch, device: str) -> Workload:
    key = f"{config.config_id}@{device}"
    if key not in _cache:
        _cache.clear()
        _prepared.clear()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        _cache[key] = build_workload(config, device, batch)
    return _cache[key]


def _maybe_die(config: Config, name: str) -> None:
    if os.environ.get(TEST_DIE_ENV) in (f"{config.config_id}|{name}", f"*|{name}"):
        os._exit(9)


def _prepare(w: Workload, name: str, backend: str) -> Prepared:
    """Prepared once per configuration: the probe and the timed rounds share it (a peer's setup,
    e.g. a block mask, and its correctness check run once)."""
    if (name, backend) not in _prepared:
        _prepared[(name, backend)] = registry()[name].prepare(w, backend)
    return _prepared[(name, backend)]


def probe(config: Config, batch: PackedBatch, name: str, backend: str, device: str) -> dict[str, Any]:
    """One forward + backward of one implementation: does it survive, and its peak memory.

    An implementation that refuses the workload (`PeerUnsupported`) gives `{"skipped": reason}`."""
    _maybe_die(config, name)
    w = _workload(config, batch, device)
    try:
        prepared = _prepare(w, name, backend)
    except PeerUnsupported as exc:          # a refusal with a reason: recorded as skipped, not as an error
        return {"skipped": exc.why.reason}
    cuda = w.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    w.clear_grads()
    compiled_before = compiled_kernel_count(backend)
    start = time.perf_counter()
    prepared.forward().backward(w.dout)
    if cuda:
        torch.cuda.synchronize()
    first_call_ms = (time.perf_counter() - start) * 1e3
    w.clear_grads()
    return {"peak_memory": (torch.cuda.max_memory_allocated() - base) if cuda else None,
            "setup_ms": prepared.setup_ms, "notes": {**prepared.notes, **_compile_notes(backend, compiled_before,
                                                                                         first_call_ms)}}


def _compile_notes(backend: str, before: int | None, first_call_ms: float) -> dict[str, Any]:
    """For a backend that compiles kernels at first call (FA4): the probe's first forward + backward time
    as `compile_ms` (kept out of every timed sample: the probe runs before the rounds) and how many
    kernels it compiled. Nothing for backends without a compile cache."""
    after = compiled_kernel_count(backend)
    if after is None:
        return {}
    return {"compile_ms": round(first_call_ms, 3), "kernels_compiled": after - (before or 0)}


def _compiled(backends: tuple[str, ...]) -> int | None:
    """Kernels compiled so far by the backends that compile at first call; None when none of them does."""
    counts = [c for b in backends if (c := compiled_kernel_count(b)) is not None]
    return sum(counts) if counts else None


def _compile_before_rounds(backends: tuple[str, ...], calls: dict, dout: Any, clear: Any) -> int | None:
    """Runs each implementation once before the rounds when a backend compiles at first call (a
    worker process that did not run the probe compiles here, not in a timed round); returns the
    compile count to compare after the rounds."""
    if _compiled(backends) is None:
        return None
    for call in calls.values():
        clear()
        call().backward(dout)
        clear()
    return _compiled(backends)


def bandwidth_gbps(w: Workload, clock: Clock, hold: Any = None) -> dict[str, float]:
    """Fill and add bandwidth on K/V-shaped buffers, measured the way the variants issue them.

    The variants differ by pairs of K/V-shaped kernels (`dk.zero_(); dv.zero_()`, `dk.add_(..);
    dv.add_(..)`), so the probe times exactly such a pair per event pair, on the mode's clock:
    behind the stream `hold` in gpu mode (GPU time, as the op's rounds), from an idle queue in
    eager mode (launch latency included, as in the op's eager rounds). The steady-state figure
    (16 kernels back to back) is kept for the report's bandwidth floor.
    """
    a, b, c, d = (torch.empty_like(w.k) for _ in range(4))
    nbytes = a.numel() * a.element_size()

    def fill_pair() -> None:
        a.zero_()
        b.zero_()

    def add_pair() -> None:
        a.add_(c)
        b.add_(d)

    def fill_burst() -> None:
        for _ in range(8):
            fill_pair()

    fill = median_ci([t / 2 for t in time_kernel_ms(fill_pair, clock, reps=PROBE_REPS, hold=hold)])
    add = median_ci([t / 2 for t in time_kernel_ms(add_pair, clock, reps=PROBE_REPS, hold=hold)])
    steady = median(time_kernel_ms(fill_burst, clock, reps=10)) / 16
    return {"fill_gbps": nbytes / fill.median / 1e6, "add_gbps": 3 * nbytes / add.median / 1e6,
            "fill_ms": fill.as_dict(), "add_ms": add.as_dict(), "fill_steady_gbps": nbytes / steady / 1e6,
            "kv_bytes": nbytes, "method": f"pairs of K/V-shaped kernels {'behind a stream hold' if hold else 'from an idle queue'}, "
                                          f"median of {PROBE_REPS}"}


def device_memory(device: str) -> dict[str, Any]:
    """Bytes a configuration may use: CUDA free memory, or the host's available RAM on the CPU."""
    if device.startswith("cuda"):
        free, total = torch.cuda.mem_get_info()
        return {"free": free, "total": total, "what": "CUDA free memory"}
    return {"free": host_available_bytes(), "total": None, "what": "available host memory"}


def host_available_bytes() -> int:
    """MemAvailable from /proc/meminfo (Linux), else physical memory."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def spin_up(device: str, seconds: float = 2.0) -> dict[str, Any]:
    """Bring GPU clocks up before the first configuration is timed (idle H100s sit at 345 MHz)."""
    if not device.startswith("cuda"):
        return {"spun_up_s": 0.0}
    x = torch.randn(4096, 4096, device=device, dtype=torch.bfloat16)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(20):
            x @ x
        torch.cuda.synchronize()
    return {"spun_up_s": time.perf_counter() - start, **gpu_clocks()}


def _stream_hold(device: torch.device) -> tuple[Any, str | None]:
    """One stream hold per worker (the flag spin compiles once) and its note; (None, None) off CUDA.

    Where no hold builds, `build_clock_set` tries again and demotes the plan to eager with the reason."""
    global _hold
    if device.type != "cuda":
        return None, None
    if _hold is None:
        _hold = build_hold()
    return _hold


def measure_config(config: Config, batch: PackedBatch, names: list[str], backend: str, device: str,
                   timing: TimingOptions, runs_on: Optional[dict[str, tuple[str, str]]] = None) -> dict[str, Any]:
    """Interleaved rounds of every implementation and clock until the stopping rule says stop.

    The plan (`bench.harness.clocks.plan`) picks the clocks: on CUDA the mode's clock (gpu: stream held,
    GPU work only; or eager) plus eager when the mode is gpu, plus graph replays with
    `cuda_graph`; on the CPU eager alone, with the reason. Each iteration runs one round of every
    clock (clocks and implementations in `round_order`), so samples pair up across implementations and
    clocks. The stopping rule watches the mode's clock and graph; eager rides along.

    `runs_on` maps a name of `names` to (the registry's name, its backend) where they differ (the backend
    axis: `zeros_always [fa4]` is zeros_always on fa4); any other name is itself on `backend`.

    Returns raw per-round samples: `samples_ms` the mode's (what differences are paired on),
    `clock_samples_ms` every clock's, the plan and its notes, phase samples from separate eager
    rounds, the stop reason and the measured fill/add bandwidth.
    """
    opts = timing
    w = _workload(config, batch, device)
    clock = Clock(w.device)
    flush = L2Flusher(w.device, opts.l2_flush)
    runs = {n: (runs_on or {}).get(n, (n, backend)) for n in names}
    calls = {n: _prepare(w, name, be).forward for n, (name, be) in runs.items()}
    used = tuple(dict.fromkeys(be for _, be in runs.values()))
    plan = plan_timing(opts.mode, w.device.type, opts.cuda_graph)
    hold, hold_note = _stream_hold(w.device)
    watched = [(a, b) for a, b in opts.watch_pairs if a in names and b in names]
    clock_set = build_clock_set(plan, calls, w.dout, w.clear_grads, clock, flush, hold=hold,
                                together=tuple(watched))
    if hold is not None and hold_note and "gpu" in clock_set.plan.series:   # the sleep hold stands in
        clock_set.plan = replace(clock_set.plan, note="; ".join(n for n in (clock_set.plan.note, hold_note) if n))
    plan = clock_set.plan
    rule = StoppingRule(opts.min_reps, opts.max_reps, opts.target_rel_ci, opts.cap_for(config.tokens),
                        opts.watch_rel_ci)
    watch = tuple(c for c in plan.series if c in (plan.mode, "graph"))
    compiled_before = _compile_before_rounds(used, calls, w.dout, w.clear_grads)
    result = measure_interleaved(clock_set, rule, opts.warmup, watch=watch, delta_clock=plan.mode,
                                 delta_pairs=watched)
    compiled_after = _compiled(used)
    recompiled = 0 if compiled_before is None or compiled_after is None else compiled_after - compiled_before
    phases = {n: [] for n in names}
    timer = PhaseTimer(clock)
    for i in range(opts.phase_reps):
        for n, r in timed_round(calls, w.dout, w.clear_grads, clock, flush, i, timer).items():
            phases[n].append(r["phases"])
    clocks = gpu_clocks() if w.device.type == "cuda" else None   # right after the timed rounds: throttling?
    probe_hold = hold if plan.mode == "gpu" else None
    return MeasuredSamples(
        gpu_clocks=clocks, samples_ms=result.samples_ms[plan.mode], clock_samples_ms=result.samples_ms,
        phase_samples_ms=phases, timing={"mode": plan.mode, "series": list(plan.series), "note": plan.note,
                                         "notes": clock_set.notes, "watched": list(watch)},
        rounds=result.rounds, stop_reason=result.stop_reason, converged=result.stop_reason == "converged",
        measure_s=result.measure_s, watched_deltas=_watched(result.samples_ms, plan.mode, watched, opts, rule),
        bandwidth=bandwidth_gbps(w, clock, probe_hold), recompiled_in_rounds=recompiled)


def _watched(samples: dict, clock: str, pairs: list, opts: TimingOptions, rule: StoppingRule) -> dict[str, Any]:
    """Per watched pair: did its paired backward delta's 95% CI (the reported one, `run_ci`) reach
    +-watch_rel_ci of itself?"""
    out = {}
    for (a, b), d in zip(pairs, paired_backward_deltas(samples, clock, pairs)):
        s = run_ci(d)
        out[f"{a}-{b}"] = {"converged": s.rel_ci <= opts.watch_rel_ci, "rel_ci": s.rel_ci,
                           "target_rel_ci": opts.watch_rel_ci, "time_cap_s": rule.time_cap_s}
    return out
