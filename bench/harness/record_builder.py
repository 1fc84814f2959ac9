"""Records of one configuration from the worker's outcomes: the one place records are made.

Statistics are computed here from the worker's raw samples, once; reports never recompute timing.
The prediction compares each variant's measured extra backward time over the best variant (the
median of per-round paired differences, so shared drift cancels) with what its byte counts predict
at the fill/add bandwidth measured in the same run (bench.results.derived).
"""
from __future__ import annotations

from typing import Any, Optional

from bench.harness.implementations import Implementation
from bench.harness.isolation import Outcome
from bench.harness.workloads import torch_dtype
from bench.results.derived import (fill_ideal, host_overhead, paired_difference, prediction, tflops,
                                   with_fwd_bwd)
from bench.results.records import CLOCKS, Record, Timings
from bench.results.samples import MeasuredSamples
from bench.results.stats import median, median_ci
from bench.spec.grid import Config
from bench.spec.packing import PackedBatch, batch_summary
from prefixlm_attn.variants import LengthsSummary


def build_records(config: Config, batch: PackedBatch, impls: list[Implementation], backend: str, device: str,
                  rank: int, gpu_index: Optional[int], probes: dict[str, Outcome],
                  measured: Optional[Outcome], backends: Optional[dict[str, str]] = None,
                  versions: Optional[dict[str, dict]] = None) -> list[Record]:
    """Every record of one configuration, from the worker's outcomes: the one place records are made.

    `probes` holds each implementation's probe outcome; `measured` the interleaved measurement of
    those whose probe succeeded (None when none did). A probe that refused the workload
    (`{"skipped": reason}`) gives status `skipped`. `backends` names the backend of an implementation
    that does not run on `backend` (the backend axis, a peer bound to its kernel); `versions` holds each
    backend's package and version (`backend_version` of its records).
    """
    summary = batch_summary(batch)
    lengths = LengthsSummary.of(batch.prefix_lens, batch.causal_lens, config.tokens, config.heads,
                                config.head_dim, torch_dtype(config.dtype))
    records: dict[str, Record] = {}
    for impl in impls:
        rec = Record(config_id=config.config_id, variant=impl.name, kind=impl.kind,
                     description=impl.description or None, distribution=config.distribution,
                     tokens=config.tokens, heads=config.heads, head_dim=config.head_dim, dtype=config.dtype,
                     seed=config.seed, context=config.context, backend=(backends or {}).get(impl.name, backend),
                     device=device, status="",
                     batch=dict(summary), rank=rank, gpu_index=gpu_index,
                     bytes=impl.byte_model(lengths).as_dict() if impl.byte_model is not None else None)
        probe = probes[impl.name]
        if not probe.ok:
            rec.status, rec.error = probe.status, probe.error
        elif "skipped" in probe.value:
            rec.status, rec.error = "skipped", probe.value["skipped"]
        elif measured is not None and not measured.ok:
            rec.status, rec.error = measured.status, measured.error
        rec.backend_version = (versions or {}).get(rec.backend)
        records[impl.name] = rec
    if measured is not None and measured.ok:
        result = measured.value if isinstance(measured.value, MeasuredSamples) else \
            MeasuredSamples.from_dict(measured.value)
        timed = {n: records[n] for n in result.samples_ms}
        _fill_measurements(timed, result, {n: probes[n].value for n in timed})
        fill_ideal(list(records.values()))
    return [records[impl.name] for impl in impls]


def _fill_measurements(records: dict[str, Record], result: MeasuredSamples, probes: dict[str, dict]) -> None:
    """Timings, paired differences, bandwidth prediction and TFLOP/s into each measured record.

    Everything paired (extra_vs_best, the prediction) and the headline forward/backward use the
    mode's samples (`samples_ms`); the other clocks of the same rounds add their own stats, host
    overhead (eager - gpu, paired by round) and their raw samples (`eager_forward`, ...)."""
    samples, phases = result.samples_ms, result.phase_samples_ms
    timing, by_clock, bw = result.timing, result.by_clock(), result.bandwidth
    variants = [n for n in samples if records[n].kind == "variant"]
    # the best variant of each backend: a prediction explains differences in bytes on one kernel
    best_of = {records[n].backend: min((v for v in variants if records[v].backend == records[n].backend),
                                       key=lambda v: median(samples[v]["backward"])) for n in variants}
    for name, s in samples.items():
        rec = records[name]
        best = best_of.get(rec.backend)
        phase_names = sorted({p for rep in phases[name] for p in rep})
        rec.timings_ms = Timings(median_ci(s["forward"]), median_ci(s["backward"]),
                                 {p: median_ci([rep.get(p, 0.0) for rep in phases[name]]) for p in phase_names}
                                 if phases[name] else {})
        if best is not None and rec.kind == "variant":
            rec.timings_ms.extra_vs_best = paired_difference(s["backward"], samples[best]["backward"])
            rec.prediction = prediction(rec, records[best], bw, best, rec.timings_ms.extra_vs_best)
        _fill_clocks(rec, timing, by_clock)
        rec.status, rec.samples_ms = "ok", _samples_of(name, timing["mode"], by_clock, s)
        rec.stop_reason, rec.repetitions = result.stop_reason, result.rounds
        rec.converged = result.converged
        if rec.kind != "block":     # a block's time is mostly matmuls: attention FLOP/s of it would mislead
            rec.tflops = tflops(rec.batch["attended_pairs"], rec.heads, rec.head_dim,
                                rec.timings_ms.forward.median, rec.timings_ms.backward.median)
        probe = probes.get(name, {})
        if rec.bytes is not None or probe.get("peak_memory") is not None:
            rec.bytes = {**(rec.bytes or {}), "peak_memory": probe.get("peak_memory")}
        if probe.get("setup_ms") is not None:
            rec.setup_ms = probe["setup_ms"]
        if probe.get("notes"):
            rec.notes = probe["notes"]
        if result.recompiled_in_rounds:     # FA4 compiled a kernel inside the timed rounds
            rec.notes = {**(rec.notes or {}), "recompiled_in_rounds": result.recompiled_in_rounds}
            warning = (f"{result.recompiled_in_rounds} kernel(s) compiled inside the timed rounds: "
                       "some samples include compile time")
            rec.timing_note = "; ".join(n for n in (rec.timing_note, warning) if n)
        rec.bandwidth = bw
        mine = {k: v for k, v in (result.watched_deltas or {}).items() if name in k.split("-")}
        rec.watched_deltas = mine or None
        rec.gpu_clocks, rec.gpu_clocks_recorded = result.gpu_clocks, True


def _fill_clocks(rec: Record, timing: dict[str, Any], by_clock: dict[str, dict]) -> None:
    """Per-clock stats, host overhead, the graph figure and the mode's notes of one record."""
    name, notes = rec.variant, timing.get("notes") or {}
    for clock in timing["series"]:
        series = by_clock.get(clock, {}).get(name)
        if series is None:
            rec.timings_ms.clock_errors[clock] = notes.get(clock, {}).get(name) or "not measured"
        else:
            rec.timings_ms.clocks[clock] = {d: median_ci(v) for d, v in with_fwd_bwd(series).items()}
    if "graph" in rec.timings_ms.clocks:
        rec.timings_ms.graph_fwd_bwd = rec.timings_ms.clocks["graph"]["fwd_bwd"]
    elif "graph" in rec.timings_ms.clock_errors:
        rec.timings_ms.graph_error = rec.timings_ms.clock_errors["graph"]
    gpu, eager = by_clock.get("gpu", {}).get(name), by_clock.get("eager", {}).get(name)
    if gpu is not None and eager is not None:
        rec.host_overhead_ms = host_overhead(eager, gpu)
    fallback = notes.get("gpu", {}).get(name)
    rec.timing_mode = timing["mode"]
    rec.timing_note = "; ".join(n for n in (timing.get("note"), fallback) if n) or None
    if "gpu" in timing["series"]:
        rec.gpu_method = "amortized" if fallback else "held"


def _samples_of(name: str, mode: str, by_clock: dict[str, dict], mode_samples: dict[str, list[float]]
                ) -> dict[str, list[float]]:
    """`forward`/`backward`: the mode's per-round samples; `<clock>_forward`/`_backward` the other clocks'."""
    out = {"forward": mode_samples["forward"], "backward": mode_samples["backward"]}
    for clock in CLOCKS:
        series = by_clock.get(clock, {}).get(name)
        if clock != mode and series is not None:
            out[f"{clock}_forward"], out[f"{clock}_backward"] = series["forward"], series["backward"]
    return out


