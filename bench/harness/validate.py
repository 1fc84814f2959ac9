"""Every variant on every boundary pattern against the dense reference, with poisoned buffers.

Fresh buffers from `torch.empty_like` often hold zeros on a quiet device, which hides a row a kernel
never wrote. Here every buffer the op allocates is filled with poison (NaN in one run, a large
finite sentinel in another, so neither `nan_to_num` nor an add can hide it), and any row that still
holds poison afterwards is reported as `unwritten`. Outcomes: ok | wrong | unwritten | crashed.
"""
from __future__ import annotations

import math
import queue
import threading
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from bench.harness.accuracy import SENTINEL, TENSORS, as_ranges, poisoned_empty_like, poisoned_rows, rel_err, tolerance
from bench.spec.errors import UserError
from bench.harness.isolation import InProcess, IsolatedWorker, Outcome, Worker
from bench.harness.workloads import random_inputs, torch_dtype
from bench.harness.patterns import Pattern
from bench.results.io import SCHEMA, RecordFile, open_results, read_record_file, write_json
from prefixlm_attn.dense_reference import dense_reference_grads
from prefixlm_attn.metadata import build_batch_metadata
from prefixlm_attn.op import prefixlm_attention
from prefixlm_attn.variants import VARIANTS

def _run_op(variant: str, backend: str, q, k, v, dout, meta, poison: float) -> dict[str, torch.Tensor]:
    q, k, v = (x.detach().clone().requires_grad_(True) for x in (q, k, v))
    with poisoned_empty_like(poison):
        out = prefixlm_attention(q, k, v, meta, variant=variant, backend=backend)
        out.backward(dout)
    if q.device.type == "cuda":
        torch.cuda.synchronize()
    return {"out": out.detach(), "dq": q.grad, "dk": k.grad, "dv": v.grad}


def validate_case(variant: str, prefix_lens: Sequence[int], causal_lens: Sequence[int], token_budget: int,
                  backend: str = "reference", device: str = "cpu", dtype: str = "float32", heads: int = 2,
                  head_dim: int = 64, seed: int = 0) -> dict[str, Any]:
    """One variant x pattern in this process; a kernel crash propagates (the worker classifies it)."""
    tdtype = torch_dtype(dtype)
    meta = build_batch_metadata(prefix_lens, causal_lens, token_budget, device=device)
    q, k, v, dout = random_inputs(token_budget, heads, head_dim, seed, device, tdtype)
    runs = {"nan": _run_op(variant, backend, q, k, v, dout, meta, math.nan),
            "sentinel": _run_op(variant, backend, q, k, v, dout, meta, SENTINEL)}
    total = meta.total
    unwritten: dict[str, list[list[int]]] = {}
    for name in TENSORS:
        rows = set(poisoned_rows(runs["nan"][name], math.nan)) | set(poisoned_rows(runs["sentinel"][name], SENTINEL))
        if rows:
            unwritten[name] = as_ranges(rows)
    if unwritten:
        return {"outcome": "unwritten", "details": {"unwritten_rows": unwritten, "total_tokens": total}}
    ref = dict(zip(TENSORS, dense_reference_grads(q.cpu(), k.cpu(), v.cpu(), dout.cpu(), list(prefix_lens),
                                                  list(causal_lens), dtype=torch.float64)))
    errors: dict[str, float] = {}
    padding: dict[str, list[list[int]]] = {}
    for name in TENSORS:
        for run in runs.values():
            got = run[name].cpu()
            err = rel_err(got[:total], ref[name][:total])
            errors[name] = max(errors.get(name, 0.0), err if math.isfinite(err) else math.inf)
            nonzero = (got[total:].float().flatten(1) != 0).any(1).nonzero().squeeze(1) + total
            if nonzero.numel():
                padding[name] = as_ranges(nonzero.tolist())
    tol = tolerance(tdtype)
    details: dict[str, Any] = {"rel_err": errors, "tolerance": tol, "total_tokens": total}
    if padding:
        details["padding_nonzero_rows"] = padding
    bad = padding or any(not (e <= tol) for e in errors.values())
    return {"outcome": "wrong" if bad else "ok", "details": details}


def expected_to_fail(variant: str, prefix_lens: Sequence[int], causal_lens: Sequence[int]) -> bool:
    """A variant crashes (FA3 bwd with max_seqlen_q == 0) when it runs a pass that has no queries."""
    v = VARIANTS[variant]
    return ((max(causal_lens) == 0 and not v.skip_empty_causal)
            or (max(prefix_lens) == 0 and not v.skip_empty_prefix))


def outcome_record(variant: str, pattern: Pattern, backend: str, device: str, dtype: str,
                   result: Outcome, heads: int, head_dim: int, seed: int) -> dict[str, Any]:
    """One validation.jsonl record from the worker's outcome."""
    if result.ok:
        outcome, details = result.value["outcome"], result.value["details"]
    else:
        outcome = "crashed"
        details = {"status": result.status, "error": result.error, "error_line": result.error_line}
    return {"schema": SCHEMA, "variant": variant, "pattern": pattern.name,
            "prefix_lens": list(pattern.prefix_lens), "causal_lens": list(pattern.causal_lens),
            "token_budget": pattern.token_budget, "backend": backend, "device": device, "dtype": dtype,
            "heads": heads, "head_dim": head_dim, "seed": seed, "outcome": outcome, "details": details,
            "expected_to_fail": expected_to_fail(variant, pattern.prefix_lens, pattern.causal_lens)}


def warm_up(device: str = "cpu", backend: str = "reference") -> bool:
    """Pay a fresh worker's start-up (imports, CUDA context, FA3 load) before it is needed."""
    from prefixlm_attn.backends import get_backend
    torch.zeros(1, device=device)
    return get_backend(backend).available()


class WarmWorkers:
    """An IsolatedWorker plus `spares` pre-started ones: a crash swaps in a warm worker at once
    (expected crashes come in clusters, and each fresh CUDA worker takes seconds to start)."""

    def __init__(self, spares: int, **warm_kwargs: Any):
        self._ready: "queue.Queue[IsolatedWorker]" = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._spares: list[IsolatedWorker] = []
        self._warm_kwargs = warm_kwargs
        self.current = IsolatedWorker()
        for _ in range(spares):
            self._replenish()

    def _warm(self) -> None:
        worker = IsolatedWorker()
        self._spares.append(worker)
        worker.call(warm_up, **self._warm_kwargs)
        self._ready.put(worker)

    def _replenish(self) -> None:
        thread = threading.Thread(target=self._warm, daemon=True)
        thread.start()
        self._threads.append(thread)

    def call(self, fn: Callable[..., Any], /, **kwargs: Any) -> Outcome:
        result = self.current.call(fn, **kwargs)
        if result.status == "crashed" and self._threads:
            self.current.close()
            self.current = self._ready.get()
            self._replenish()
        return result

    def close(self) -> None:
        for spare in list(self._spares):          # unused now: not waited for while they warm up
            spare.kill()
        for thread in self._threads:
            thread.join()
        self.current.close()
        while not self._ready.empty():
            self._ready.get().close()

    def __enter__(self) -> "WarmWorkers":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_validation(variants: Sequence[str], patterns: Sequence[Pattern], backend: str, device: str, dtype: str,
                   out_dir: str | Path, heads: int = 2, head_dim: int = 64, seed: int = 0,
                   isolation: str = "process", on_record: Optional[Any] = None,
                   spare_workers: int = 2, resume: bool = False) -> list[dict[str, Any]]:
    """Run every variant x pattern; append + flush each record to `out_dir/validation.jsonl`.

    With `resume`, cases already recorded there (variant, pattern name) are kept and skipped;
    without it an existing non-empty file is refused rather than overwritten.
    """
    out_dir = Path(out_dir)
    path = open_results(out_dir, "validation.jsonl", resume)
    records = read_record_file(path, repair=True) if resume else []
    for r in records:
        if r.get("variant") not in VARIANTS or "pattern" not in r or "outcome" not in r:
            raise UserError(f"{path}: a record of variant {r.get('variant')!r} that this version cannot resume "
                            "(unknown variant or missing keys); use another --out")
    done = {(r["variant"], r["pattern"]) for r in records}
    sink = RecordFile(path)
    worker: Worker = (WarmWorkers(spare_workers, device=device, backend=backend) if isolation == "process"
              else InProcess())
    with worker:
        for pattern in patterns:
            for variant in variants:
                if (variant, pattern.name) in done:
                    continue
                result = worker.call(validate_case, variant=variant,
                                     prefix_lens=list(pattern.prefix_lens), causal_lens=list(pattern.causal_lens),
                                     token_budget=pattern.token_budget, backend=backend, device=device,
                                     dtype=dtype, heads=heads, head_dim=head_dim, seed=seed)
                record = outcome_record(variant, pattern, backend, device, dtype, result, heads, head_dim, seed)
                sink.append(record)
                records.append(record)
                if on_record is not None:
                    on_record(record)
    write_json(out_dir / "validation_summary.json", summarize(records), indent=1, newline=True)
    return records


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per variant: outcome counts; and whether the run passes (see `passed`)."""
    per_variant: dict[str, dict[str, int]] = {}
    for r in records:
        counts = per_variant.setdefault(r["variant"], {})
        key = r["outcome"] + (" (expected)" if r["outcome"] != "ok" and r["expected_to_fail"] else "")
        counts[key] = counts.get(key, 0) + 1
    return {"schema": SCHEMA, "cases": len(records), "per_variant": per_variant, "passed": passed(records),
            "failures": [f"{r['variant']}/{r['pattern']}: {r['outcome']}" for r in records if _fails(r)]}


def _fails(record: dict[str, Any]) -> bool:
    if VARIANTS[record["variant"]].recommended:
        return record["outcome"] != "ok"
    return record["outcome"] in ("wrong", "unwritten")


def passed(records: Sequence[dict[str, Any]]) -> bool:
    """Recommended variants are ok everywhere; no variant gives a silent wrong answer."""
    return not any(_fails(r) for r in records)
