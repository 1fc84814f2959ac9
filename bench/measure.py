"""What runs inside the isolated worker: probe one implementation, measure a configuration.

Functions here take and return picklable data (they cross a process boundary): the parent packs
each configuration's batch once and sends it with the configuration. The workload of the
last configuration is cached, so probing five implementations builds the tensors once.
"""
from __future__ import annotations

import os
import time
from typing import Any

import torch

from bench.gpu_clocks import gpu_clocks   # NVML in-process, nvidia-smi as fallback
from bench.grid import Config, TimingOptions
from bench.implementations import Prepared
from bench.peers.base import PeerUnsupported
from bench.registry import registry
from bench.workloads import PackedBatch, Workload, build_workload
from bench.stats import StoppingRule, converged, median, median_ci
from bench.timing import Clock, L2Flusher, PhaseTimer, time_kernel_ms, timed_round

_cache: dict[str, Workload] = {}
_prepared: dict[tuple[str, str], Prepared] = {}   # (implementation, backend) for the cached workload
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
        return {"skipped": str(exc)}
    cuda = w.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    w.clear_grads()
    prepared.forward().backward(w.dout)
    if cuda:
        torch.cuda.synchronize()
    w.clear_grads()
    return {"peak_memory": (torch.cuda.max_memory_allocated() - base) if cuda else None,
            "setup_ms": prepared.setup_ms, "notes": prepared.notes}


def bandwidth_gbps(w: Workload, clock: Clock) -> dict[str, float]:
    """Fill and add bandwidth on K/V-shaped buffers, measured the way the variants issue them.

    The variants differ by pairs of K/V-shaped kernels (`dk.zero_(); dv.zero_()`, `dk.add_(..);
    dv.add_(..)`) issued from an idle queue at the start of the backward, so the probe times exactly
    such a pair per event pair (launch latency included, as in the op). The steady-state figure
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

    fill = median_ci([t / 2 for t in time_kernel_ms(fill_pair, clock, reps=PROBE_REPS)])
    add = median_ci([t / 2 for t in time_kernel_ms(add_pair, clock, reps=PROBE_REPS)])
    steady = median(time_kernel_ms(fill_burst, clock, reps=10)) / 16
    return {"fill_gbps": nbytes / fill.median / 1e6, "add_gbps": 3 * nbytes / add.median / 1e6,
            "fill_ms": fill.as_dict(), "add_ms": add.as_dict(), "fill_steady_gbps": nbytes / steady / 1e6,
            "kv_bytes": nbytes, "method": f"pairs of K/V-shaped kernels from an idle queue, median of {PROBE_REPS}"}


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


def measure_config(config: Config, batch: PackedBatch, names: list[str], backend: str, device: str,
                   timing: TimingOptions) -> dict[str, Any]:
    """Interleaved rounds of every implementation until the stopping rule says stop.

    Returns raw per-round samples (so differences can be paired by round), phase samples from
    separate phase-observed rounds, the stop reason, and the measured fill/add bandwidth.
    """
    opts = timing
    w = _workload(config, batch, device)
    clock = Clock(w.device)
    flush = L2Flusher(w.device, opts.l2_flush)
    calls = {n: _prepare(w, n, backend).forward for n in names}
    for i in range(opts.warmup):
        timed_round(calls, w.dout, w.clear_grads, clock, flush, i)
    rule = StoppingRule(opts.min_reps, opts.max_reps, opts.target_rel_ci, opts.time_cap_s)
    samples = {n: {"forward": [], "backward": []} for n in names}
    start, rounds, stop_reason = time.perf_counter(), 0, None
    while stop_reason is None:
        result = timed_round(calls, w.dout, w.clear_grads, clock, flush, rounds)
        for n, r in result.items():
            samples[n]["forward"].append(r["forward"])
            samples[n]["backward"].append(r["backward"])
        rounds += 1
        series = [s[k] for s in samples.values() for k in ("forward", "backward")]
        stop_reason = rule.verdict(series, time.perf_counter() - start)
    phases = {n: [] for n in names}
    timer = PhaseTimer(clock)
    for i in range(opts.phase_reps):
        for n, r in timed_round(calls, w.dout, w.clear_grads, clock, flush, i, timer).items():
            phases[n].append(r["phases"])
    graph = _graph_replays(calls, w, clock, opts) if opts.cuda_graph else None
    clocks = gpu_clocks() if w.device.type == "cuda" else None   # right after the timed rounds: throttling?
    return {"gpu_clocks": clocks, "samples_ms": samples, "phase_samples_ms": phases, "rounds": rounds, "stop_reason": stop_reason,
            "converged": converged(series, opts.target_rel_ci),
            "measure_s": time.perf_counter() - start, "bandwidth": bandwidth_gbps(w, clock),
            "graph_ms": graph}


def _graph_replays(calls: dict, w: Workload, clock: Clock, opts: TimingOptions) -> dict[str, Any]:
    """Forward + backward captured as one CUDA graph per implementation; replay times (launch overhead gone)."""
    if w.device.type != "cuda":
        return {n: {"error": "CUDA graphs need a CUDA device"} for n in calls}
    out: dict[str, Any] = {}
    for name, forward in calls.items():
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    w.clear_grads()
                    forward().backward(w.dout)
            torch.cuda.current_stream().wait_stream(side)
            w.clear_grads()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                forward().backward(w.dout)
            out[name] = {"replay_ms": time_kernel_ms(graph.replay, clock, reps=max(opts.min_reps, 20))}
            del graph
        except Exception as exc:  # noqa: BLE001 - a capture failure is data, not a crash
            out[name] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        w.clear_grads()
    return out
