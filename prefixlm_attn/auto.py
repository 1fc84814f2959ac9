"""The per-batch dispatcher's cost model: which split of the pairs, by queries or by keys, is faster.

predicted time of a variant = sum over its passes of (tile pairs x that pass's rate)
                              + its extra memory traffic / bandwidth.

Tile pairs come from the batch's host length lists (`pair_counts.py`, carried by the metadata as a
CPU tensor, so the pick reads no device memory). Rates, per pass and per direction, are measured once
per device, backend, heads, head dim and dtype on a fixed calibration batch and cached for the
process. Without FA3 on CUDA (the reference backend, the CPU), or while a CUDA graph is being
captured and nothing is cached yet, a fixed nominal model stands in: every pass at 600 TFLOP/s
forward and 450 TFLOP/s backward on its tile pairs (4 and 10 FLOPs per pair per head-dim element),
2.5 TB/s for memory traffic. The backward never measures, so it makes the pick its forward made.
"""
from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Optional

import torch

from prefixlm_attn.key_split import prefix_keys_kwargs, response_keys_kwargs
from prefixlm_attn.metadata import build_batch_metadata
from prefixlm_attn.pair_counts import BatchPairs, prefixlm_pair_counts
from prefixlm_attn.passes import PassPlan

CANDIDATES = {"prefix_rows_add": ("bidir", "causal"), "key_split": ("key_prefix", "key_response")}
FALLBACK = "prefix_rows_add"
FIXED_FWD_TFLOPS, FIXED_BWD_TFLOPS, FIXED_GBPS = 600.0, 450.0, 2500.0
CALIBRATION_LENGTHS = ([1536] * 8, [512] * 8)   # 16k tokens: every pass has several waves of tiles
CALIBRATION_REPS = 5


@dataclass(frozen=True)
class PassRates:
    """ms per tile pair of each pass (forward and backward) and the memory bandwidth."""
    fwd_ms_per_pair: dict[str, float]
    bwd_ms_per_pair: dict[str, float]
    gbps: float
    source: str                     # "fixed" | "measured: <device name>"


@dataclass(frozen=True)
class AutoChoice:
    """What `auto` ran and why: both candidates' predicted forward and backward times."""
    variant: str
    predicted_ms: dict[str, dict[str, float]]
    model: str

    def as_dict(self) -> dict:
        return asdict(self)


_rates: dict[tuple, PassRates] = {}
_last: Optional[AutoChoice] = None


def last_choice() -> Optional[AutoChoice]:
    """The pick of the most recent `auto` forward in this process (None before the first)."""
    return _last


def fixed_rates(heads: int, head_dim: int) -> PassRates:
    per_pair = heads * head_dim
    fwd = 4 * per_pair / (FIXED_FWD_TFLOPS * 1e12) * 1e3
    bwd = 10 * per_pair / (FIXED_BWD_TFLOPS * 1e12) * 1e3
    names = [p for passes in CANDIDATES.values() for p in passes]
    return PassRates({p: fwd for p in names}, {p: bwd for p in names}, FIXED_GBPS, "fixed")


def _pass_kwargs(plan: PassPlan) -> dict[str, dict]:
    return {"bidir": plan.bidir_kwargs(), "causal": plan.causal_kwargs(),
            "key_prefix": prefix_keys_kwargs(plan), "key_response": response_keys_kwargs(plan)}


def _median_ms(fn, reps: int = CALIBRATION_REPS) -> float:
    fn()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def measure_rates(backend: str, heads: int, head_dim: int, dtype: torch.dtype, device: torch.device) -> PassRates:
    """Time each pass of both splits, forward and backward, on the calibration batch (one-off sync)."""
    prefix, causal = CALIBRATION_LENGTHS
    budget = sum(prefix) + sum(causal)
    meta = build_batch_metadata(prefix, causal, budget, device=device)
    plan = PassPlan.from_op_args(backend, *meta.op_args(), False, head_dim ** -0.5)
    pairs = prefixlm_pair_counts(prefix, causal).passes
    gen = torch.Generator(device=device).manual_seed(0)
    q, k, v, dout = (torch.randn(budget, heads, head_dim, generator=gen, device=device, dtype=dtype)
                     for _ in range(4))
    out, dq, dk, dv = (torch.zeros_like(q) for _ in range(4))
    fwd, bwd = {}, {}
    for name, kw in _pass_kwargs(plan).items():
        lse = plan.backend.forward(q, k, v, out, **kw)
        fwd[name] = _median_ms(lambda: plan.backend.forward(q, k, v, out, **kw)) / pairs[name].fwd_tiles
        bwd[name] = _median_ms(lambda: plan.backend.backward(dout, q, k, v, out, lse, dq, dk, dv, **kw)) \
            / pairs[name].bwd_tiles
    add_ms = _median_ms(lambda: dq.add_(dk))
    gbps = 3 * q.numel() * q.element_size() / (add_ms * 1e-3) / 1e9
    return PassRates(fwd, bwd, gbps, f"measured: {torch.cuda.get_device_name(device)}")


def rates_for(plan: PassPlan, q: torch.Tensor, may_measure: bool) -> PassRates:
    """Cached measured rates on CUDA + FA3; the fixed model otherwise or when measuring is not allowed."""
    heads, head_dim = q.shape[1], q.shape[2]
    if not (q.is_cuda and plan.backend.name == "fa3"):
        return fixed_rates(heads, head_dim)
    key = (plan.backend.name, q.device.index, heads, head_dim, q.dtype)
    if key not in _rates:
        if not may_measure or torch.cuda.is_current_stream_capturing():
            return fixed_rates(heads, head_dim)
        _rates[key] = measure_rates(plan.backend.name, heads, head_dim, q.dtype, q.device)
    return _rates[key]


def merge_bytes(pairs: BatchPairs, row_bytes: int, heads: int) -> int:
    """The forward merge's traffic: read two partial outs, write one, on response rows (+ the LSEs)."""
    if pairs.prefix_tokens == 0 or pairs.causal_tokens == 0:
        return 0
    return pairs.causal_tokens * (3 * row_bytes + 3 * 4 * heads)


def predict(variant: str, pairs: BatchPairs, rates: PassRates, fwd_bytes: int, bwd_bytes: int) -> dict[str, float]:
    """Predicted forward and backward ms of one candidate."""
    fwd = sum(pairs.passes[p].fwd_tiles * rates.fwd_ms_per_pair[p] for p in CANDIDATES[variant])
    bwd = sum(pairs.passes[p].bwd_tiles * rates.bwd_ms_per_pair[p] for p in CANDIDATES[variant])
    fwd += fwd_bytes / (rates.gbps * 1e9) * 1e3
    bwd += bwd_bytes / (rates.gbps * 1e9) * 1e3
    return {"forward": fwd, "backward": bwd, "total": fwd + bwd}


def batch_pairs(plan: PassPlan) -> Optional[BatchPairs]:
    """The plan's host pair counts; computed here only when the lengths already live on the CPU."""
    if plan.pair_counts is not None:
        return BatchPairs.from_tensor(plan.pair_counts)
    if plan.prefix_lens.device.type == "cpu":
        return prefixlm_pair_counts(plan.prefix_lens.tolist(), plan.causal_lens.tolist())
    return None


def choose(plan: PassPlan, q: torch.Tensor, bwd_bytes: dict[str, int], *, forward: bool) -> AutoChoice:
    """The faster candidate for this batch; the forward's pick is remembered for `last_choice()`."""
    global _last
    pairs = batch_pairs(plan)
    if plan.is_causal or pairs is None:
        choice = AutoChoice(FALLBACK, {}, "is_causal" if plan.is_causal else "no host pair counts")
    else:
        rates = rates_for(plan, q, may_measure=forward)
        row_bytes = q.shape[1] * q.shape[2] * q.element_size()
        fwd_bytes = {"prefix_rows_add": 0, "key_split": merge_bytes(pairs, row_bytes, q.shape[1])}
        predicted = {name: predict(name, pairs, rates, fwd_bytes[name], bwd_bytes[name]) for name in CANDIDATES}
        best = min(CANDIDATES, key=lambda n: (predicted[n]["total"], n != FALLBACK))
        choice = AutoChoice(best, predicted, rates.source)
    if forward:
        _last = choice
    return choice
