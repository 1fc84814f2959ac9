"""Kernel contract probes: which rows does each backend call actually write?

The variants' correctness rests on row facts (docs/DESIGN.md, "Kernel backend contract"): the
forward writes `out` rows of valid queries only, the backward writes `dq` of valid queries and
`dk/dv` of each key span. Each probe calls one pass of one backend directly on NaN-poisoned
buffers and records the written rows, next to the rows its contract predicts (each backend's own:
prefixlm_attn/backends/contracts.py; the reference mirrors one), so a kernel build that changes a row
fact, or what an empty pass does, shows up here before it shows up as a wrong gradient.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from bench.harness.accuracy import as_ranges, written_rows
from bench.results.io import SCHEMA, write_json
from bench.harness.isolation import InProcess, IsolatedWorker, Outcome, Worker
from bench.harness.patterns import Pattern, catalogue
from bench.harness.workloads import random_inputs, torch_dtype
from prefixlm_attn.backends.base import default_softmax_scale
from prefixlm_attn.backends.contracts import CONTRACTS, FA3_CONTRACT, KernelContract, backend_contract, mirror_of
from prefixlm_attn.backends.registry import kernel_backend_names
from prefixlm_attn.metadata import build_batch_metadata
from prefixlm_attn.passes import PassPlan

PROBE_PATTERNS = ("single_both", "mixed_zero_causal", "mixed_zero_prefix", "empty_sequence_middle",
                  "one_token_response", "exact_budget", "all_zero_causal")
PASSES = ("bidir", "causal")


def expected_rows(pattern: Pattern, pass_name: str, contract: KernelContract = FA3_CONTRACT
                  ) -> dict[str, list[list[int]]]:
    """The rows `contract` says each buffer gets, for one pass of one pattern (FA3's by default)."""
    q_rows: list[int] = []
    k_rows: list[int] = []
    start = 0
    for p, c in zip(pattern.prefix_lens, pattern.causal_lens):
        if pass_name == "bidir":
            q_rows += range(start, start + p)
            k_rows += range(start, start + p)
        else:                                  # seqused_k is None: the whole cu_k span
            q_rows += range(start + p, start + p + c)
            k_rows += range(start, start + p + c)
        start += p + c
    q, k = as_ranges(q_rows), as_ranges(k_rows)
    empty = not q_rows
    if empty and contract.empty_backward != "crash":    # an empty pass that returns writes nothing
        k = [] if contract.empty_backward == "noop" else k
    return {"out": q, "dq": q, "dk": k, "dv": k, "backward_crashes": empty and contract.empty_backward == "crash"}


def probe_pass(backend: str, prefix_lens: Sequence[int], causal_lens: Sequence[int], token_budget: int,
               pass_name: str, stage: str, device: str = "cpu", dtype: str = "float32", heads: int = 2,
               head_dim: int = 64, seed: int = 0) -> dict[str, list[list[int]]]:
    """Run one pass's forward (stage 'forward') or forward + backward ('backward'); return rows written."""
    meta = build_batch_metadata(prefix_lens, causal_lens, token_budget, device=device)
    plan = PassPlan.from_op_args(backend, *meta.op_args(), False, default_softmax_scale(head_dim))
    q, k, v, dout = random_inputs(token_budget, heads, head_dim, seed, device, torch_dtype(dtype))
    out = torch.full_like(q, float("nan"))
    forward = plan.bidir_forward if pass_name == "bidir" else plan.causal_forward
    lse = forward(q, k, v, out)
    if stage == "forward":
        _sync(device)
        return {"out": written_rows(out)}
    clean_out = torch.nan_to_num(out, nan=0.0)
    dq, dk, dv = (torch.full_like(x, float("nan")) for x in (q, k, v))
    backward = plan.bidir_backward if pass_name == "bidir" else plan.causal_backward
    backward(dout, q, k, v, clean_out, lse, dq, dk, dv)
    _sync(device)
    return {"dq": written_rows(dq), "dk": written_rows(dk), "dv": written_rows(dv)}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _stage_result(result: Outcome) -> dict[str, Any]:
    if result.ok:
        return {"status": "ok", "rows": result.value}
    return {"status": result.status, "error_line": result.error_line}


def _rows_of(stages: dict[str, Any]) -> dict[str, Any]:
    """Merged rows of both stages, or the statuses when a stage did not finish."""
    merged: dict[str, Any] = {}
    for stage, res in stages.items():
        merged.update(res["rows"] if res["status"] == "ok" else {f"{stage}_status": res["status"]})
    return merged


def run_probes(backends: Sequence[str], out_dir: str | Path, device: str = "cpu", dtype: str = "float32",
               heads: int = 2, head_dim: int = 64, patterns: Optional[Sequence[Pattern]] = None,
               isolation: str = "process") -> dict[str, Any]:
    """Probe every pattern x pass x backend; write `out_dir/contract_probes.json`."""
    if patterns is None:
        by_name = {p.name: p for p in catalogue()}
        patterns = [by_name[n] for n in PROBE_PATTERNS]
    probes = []
    worker: Worker = IsolatedWorker() if isolation == "process" else InProcess()
    with worker:
        for pattern in patterns:
            for pass_name in PASSES:
                entry: dict[str, Any] = {"pattern": pattern.name, "prefix_lens": list(pattern.prefix_lens),
                                         "causal_lens": list(pattern.causal_lens),
                                         "token_budget": pattern.token_budget, "pass": pass_name,
                                         "expected": expected_rows(pattern, pass_name), "backends": {}}
                expected = {b: expected_rows(pattern, pass_name, backend_contract(b)) for b in backends}
                for backend in backends:
                    stages = {}
                    for stage in ("forward", "backward"):
                        res = worker.call(probe_pass, backend=backend,
                                          prefix_lens=list(pattern.prefix_lens),
                                          causal_lens=list(pattern.causal_lens), token_budget=pattern.token_budget,
                                          pass_name=pass_name, stage=stage, device=device, dtype=dtype,
                                          heads=heads, head_dim=head_dim)
                        stages[stage] = _stage_result(res)
                    rows = _rows_of(stages)
                    entry["backends"][backend] = {"stages": stages, "rows": rows,
                                                  "contract": backend_contract(backend).kernel,
                                                  "expected": expected[backend],
                                                  "matches_contract": _matches(rows, expected[backend])}
                if len(backends) > 1:
                    first, *rest = [entry["backends"][b]["rows"] for b in backends]
                    entry["backends_agree"] = all(r == first for r in rest)
                probes.append(entry)
    report = {"schema": SCHEMA, "device": device, "dtype": dtype, "backends": list(backends), "probes": probes,
              "all_match_contract": all(b["matches_contract"]
                                        for p in probes for b in p["backends"].values())}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "contract_probes.json", report, indent=1, newline=True)
    return report


def _matches(rows: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Rows written equal the contract's, and the backward crashes exactly when the pass has no query."""
    compared = [rows[name] == expected[name] for name in ("out", "dq", "dk", "dv") if name in rows]
    crashed = rows.get("backward_status") == "crashed"
    return all(compared) and crashed == expected["backward_crashes"]


def probe_backends(backend_name: str) -> list[str]:
    """The validated backend with its reference mirror; the reference alone probes every kernel contract
    it mirrors (so the CPU covers each)."""
    if backend_name.startswith("reference"):
        return [mirror_of(k) for k in kernel_backend_names() if k in CONTRACTS]
    return [mirror_of(backend_name), backend_name]
