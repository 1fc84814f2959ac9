"""Records: one JSON object per configuration x implementation, appended and flushed as each finishes.

Statistics are computed here from the worker's raw samples, once; reports never recompute timing.
The prediction compares each variant's measured extra backward time over the best variant (the
median of per-round paired differences, so shared drift cancels) with what its byte counts predict
at the fill/add bandwidth measured in the same run.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional


from bench.io import SCHEMA
from bench.grid import Config
from bench.implementations import Implementation
from bench.workloads import batch_summary, packed_batch, torch_dtype
from bench.stats import Stat, median, median_ci
from prefixlm_attn.variants import LengthsSummary

FLOPS_PER_PAIR_FWD = 4          # QK^T and PV: 2 multiply-adds per head-dim element
FLOPS_PER_PAIR_BWD = 10         # dV, dP, dS->dQ, dK, plus the recomputed QK^T (FA convention: 2.5x fwd)


def base_records(config: Config, impls: list[Implementation], backend: str, device: str) -> dict[str, dict[str, Any]]:
    """One record skeleton per implementation of a configuration (the batch is packed once)."""
    batch = packed_batch(config)
    summary = batch_summary(batch)
    lengths = LengthsSummary.of(batch.prefix_lens, batch.causal_lens, config.tokens, config.heads,
                                config.head_dim, torch_dtype(config.dtype))
    records = {}
    for impl in impls:
        name = impl.name
        records[name] = {"schema": SCHEMA, "config_id": config.config_id, "variant": name, "kind": impl.kind,
                         **config.as_dict(), "backend": backend, "device": device, "status": None, "error": None,
                         "batch": dict(summary), "timings_ms": None, "stop_reason": None, "repetitions": 0,
                         "bytes": impl.byte_model(lengths).as_dict() if impl.byte_model is not None else None,
                         "prediction": None, "tflops": None}
    return records


def failed_record(record: dict, status: str, error: Optional[str]) -> dict:
    return {**record, "status": status, "error": error}


def _stat(values: list[float]) -> dict:
    return median_ci(values).as_dict()


def fill_measurements(records: dict[str, dict], result: dict[str, Any], probes: dict[str, dict]) -> None:
    """Timings, paired differences, bandwidth prediction and TFLOP/s into each ok record (in place)."""
    samples, phases = result["samples_ms"], result["phase_samples_ms"]
    bw = result["bandwidth"]
    variants = [n for n in samples if records[n]["kind"] == "variant"]
    best = min(variants, key=lambda n: median(samples[n]["backward"])) if variants else None
    for name, s in samples.items():
        rec = records[name]
        phase_names = sorted({p for rep in phases[name] for p in rep})
        rec["timings_ms"] = {
            "forward": _stat(s["forward"]), "backward": _stat(s["backward"]),
            "phases": {p: _stat([rep.get(p, 0.0) for rep in phases[name]]) for p in phase_names}
            if phases[name] else {},
        }
        if best is not None and rec["kind"] == "variant":
            rec["timings_ms"]["extra_vs_best"] = paired_difference(s["backward"], samples[best]["backward"]).as_dict()
            rec["prediction"] = _prediction(rec, records[best], bw, best, rec["timings_ms"]["extra_vs_best"])
        if result.get("graph_ms") and name in result["graph_ms"]:
            g = result["graph_ms"][name]
            rec["timings_ms"]["graph_fwd_bwd"] = _stat(g["replay_ms"]) if "replay_ms" in g else {"error": g["error"]}
        rec.update(status="ok", samples_ms=s, stop_reason=result["stop_reason"], repetitions=result["rounds"])
        pairs = rec["batch"]["attended_pairs"] * rec["heads"] * rec["head_dim"]
        rec["tflops"] = {"forward": FLOPS_PER_PAIR_FWD * pairs / (rec["timings_ms"]["forward"]["median"] * 1e9),
                         "backward": FLOPS_PER_PAIR_BWD * pairs / (rec["timings_ms"]["backward"]["median"] * 1e9)}
        probe = probes.get(name, {})
        if rec["bytes"] is not None or probe.get("peak_memory") is not None:
            rec["bytes"] = {**(rec["bytes"] or {}), "peak_memory": probe.get("peak_memory")}
        if probe.get("setup_ms") is not None:
            rec["setup_ms"] = probe["setup_ms"]
        if probe.get("notes"):
            rec["notes"] = probe["notes"]


def paired_difference(a: list[float], b: list[float]) -> Stat:
    """Median and interval of a - b over rounds (same index = same interleaved round, so drift cancels)."""
    return median_ci([x - y for x, y in zip(a, b)])


def predicted_extra_ms(rec: dict, base: dict, bw: dict) -> tuple[float, list[float]]:
    """Extra ms of `rec` over `base` from their byte differences, in units of one K/V-sized fill (or
    add) at the bandwidth probe's time; the interval comes from the probe's 95% intervals."""
    b, b0 = rec["bytes"], base["bytes"]
    d_fill, d_add = b["zero_filled"] - b0["zero_filled"], b["added"] - b0["added"]
    f, a = bw["fill_ms"], bw["add_ms"]

    def at(key: str) -> float:
        return (d_fill * f[key] + d_add / 3 * a[key]) / bw["kv_bytes"]

    return at("median"), sorted((at("lo"), at("hi")))


def _prediction(rec: dict, best_rec: dict, bw: dict, best: str, measured: dict) -> dict:
    predicted, interval = predicted_extra_ms(rec, best_rec, bw)
    return {"best_variant": best, "extra_ms_vs_best_predicted": predicted,
            "extra_ms_vs_best_predicted_interval": interval,
            "extra_ms_vs_best_measured": measured["median"],
            "extra_ms_vs_best_interval": [measured["lo"], measured["hi"]],
            "fill_gbps": bw["fill_gbps"], "add_gbps": bw["add_gbps"]}


def done_keys(records: Iterable[dict]) -> set[tuple[str, str]]:
    """(config_id, implementation) pairs already recorded, whatever their status."""
    return {(r["config_id"], r["variant"]) for r in records if r.get("status")}
