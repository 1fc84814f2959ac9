"""Correctness before timing: each peer's out, dq, dk, dv against a dense float64 reference.

The reference is O(T^2) per sequence, so a workload of more than `CHECK_TOKENS` tokens is checked on
a sub-batch: its first sequences (in packing order, skipping any that would overflow) up to
`CHECK_TOKENS` tokens, with their own Q/K/V rows, padded to `CHECK_TOKENS + CHECK_PADDING` rows (one
fixed shape, so a compiled peer compiles once for all checks).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import torch

from bench.harness.implementations import Prepared
from bench.harness.workloads import Workload
from bench.harness.peers.base import BIDIR, CAUSAL, PeerCheckFailed
from bench.harness.accuracy import rel_err, tolerance as default_tolerance
from bench.spec.packing import PackedBatch
from prefixlm_attn.dense_reference import dense_reference_grads
from prefixlm_attn.metadata import build_batch_metadata

CHECK_TOKENS = 4096
CHECK_PADDING = 128   # keeps the shape a multiple of 128 (cuDNN SDPA bug at T % 128 == 64)
PrepareFn = Callable[[Workload, str], Prepared]

_RAW: dict[str, tuple[PrepareFn, str]] = {}       # name -> (unchecked prepare, reference kind)
_DONE: dict[tuple, dict[str, Any]] = {}           # (name, config_id, backend, device) -> check


def reference_lens(w: Workload, reference: str) -> tuple[list[int], list[int], bool]:
    """(prefix_lens, causal_lens, is_causal) of the dense mask this peer must reproduce."""
    p, c = list(w.batch.prefix_lens), list(w.batch.causal_lens)
    if reference == BIDIR:
        return [a + b for a, b in zip(p, c)], [0] * len(p), False
    return p, c, reference == CAUSAL


def sub_workload(w: Workload, max_tokens: int | None = None) -> Workload:
    """The first sequences of `w` (at most `max_tokens` tokens) and their rows, plus padding rows."""
    max_tokens = CHECK_TOKENS if max_tokens is None else max_tokens
    starts, pre, cau, used, start = [], [], [], 0, 0
    for p, c in zip(w.batch.prefix_lens, w.batch.causal_lens):
        if used + p + c <= max_tokens:
            starts.append(start)
            pre.append(p)
            cau.append(c)
            used += p + c
        start += p + c
    if not pre:  # every sequence is longer: keep the first one's prefix share, cut to max_tokens
        p, c = w.batch.prefix_lens[0], w.batch.causal_lens[0]
        pre, cau, starts = [p * max_tokens // (p + c)], [max_tokens - p * max_tokens // (p + c)], [0]
        used = max_tokens
    rows = torch.cat([torch.arange(s, s + p + c) for s, p, c in zip(starts, pre, cau)])
    budget = max_tokens + CHECK_PADDING
    gen = torch.Generator(device="cpu").manual_seed(1)

    def take(x: torch.Tensor) -> torch.Tensor:
        pad = torch.randn((budget - used, *x.shape[1:]), generator=gen).to(x.device, x.dtype)
        return torch.cat([x.detach()[rows.to(x.device)], pad])

    q, k, v = (take(x).requires_grad_(True) for x in w.leaves())
    meta = build_batch_metadata(pre, cau, budget, str(w.device))
    shape = replace(w.shape, tokens=budget)
    return Workload(shape, PackedBatch(tuple(pre), tuple(cau), budget), meta, q, k, v, take(w.dout),
                    f"{w.label}/check")


def check_prepared(prepared: Prepared, w: Workload, reference: str,
                   tolerance: float | None = None) -> dict[str, Any]:
    """Max relative error (||a-b|| / max(||b||, 1)) over out, dq, dk, dv, and padding rows zero."""
    out = prepared.forward()
    grads = torch.autograd.grad(out, w.leaves(), w.dout)
    p, c, is_causal = reference_lens(w, reference)
    ref = dense_reference_grads(*w.leaves(), w.dout, p, c, torch.float64, is_causal)
    got = (out.detach(), *grads)
    errors = {n: rel_err(a, b) for n, a, b in zip(("out", "dq", "dk", "dv"), got, ref)}
    total = w.meta.total
    padding_zero = all(bool((g[total:] == 0).all()) for g in got)
    tol = tolerance if tolerance is not None else default_tolerance(w.q.dtype)
    worst = max(errors.values())
    return {"max_rel_err": worst, "rel_err": errors, "tolerance": tol, "padding_zero": padding_zero,
            "checked_tokens": total, "checked_seqs": len(p), "reference": reference,
            "ok": bool(worst <= tol and padding_zero)}


def check_peer(name: str, w: Workload, backend: str, tolerance: float | None = None) -> dict[str, Any]:
    """Check peer `name` on `w` (or on its sub-batch when `w` has more than CHECK_TOKENS tokens)."""
    prepare, reference = _RAW[name]
    small = w if w.shape.tokens <= CHECK_TOKENS else sub_workload(w)
    return check_prepared(prepare(small, backend), small, reference, tolerance)


def checked(name: str, prepare: PrepareFn, reference: str) -> PrepareFn:
    """`prepare` that first checks the peer (once per configuration) and refuses to time a wrong one."""
    _RAW[name] = (prepare, reference)

    def wrapped(w: Workload, backend: str) -> Prepared:
        prepared = prepare(w, backend)
        key = (name, w.label or (w.shape, w.batch), backend, str(w.device))
        if key not in _DONE:
            if w.shape.tokens <= CHECK_TOKENS:
                _DONE[key] = check_prepared(prepared, w, reference)
            else:
                _DONE[key] = check_peer(name, w, backend)
        check = _DONE[key]
        prepared.notes["check"] = check
        if not check["ok"]:
            raise PeerCheckFailed(f"{name}: disagrees with the dense {reference} reference "
                                  f"(max rel err {check['max_rel_err']:.3g} > {check['tolerance']:.3g}"
                                  f"{'' if check['padding_zero'] else ', padding rows not zero'})")
        return prepared
    return wrapped
