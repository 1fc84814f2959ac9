"""On the H100 with the patched FA3: the single pass against the float64 dense reference in bf16,
on the boundary patterns and on long multi-block sequences (prefix ends inside and across tiles)."""
from __future__ import annotations

import pytest
import torch

from bench.harness.patterns import catalogue
from bench.harness.validate import rel_err as _rel
from bench.harness.validate import tolerance
from prefixlm_attn import build_batch_metadata, prefixlm_attention
from prefixlm_attn.backends.fa3_prefixlm import FA3_PREFIXLM
from prefixlm_attn.dense_reference import dense_reference_grads

pytestmark = pytest.mark.gpu

CASES = {p.name: (list(p.prefix_lens), list(p.causal_lens)) for p in catalogue()}
CASES.update({
    "multi_block_mix": ([0, 300, 1000, 129, 64, 0, 777], [200, 0, 300, 128, 1, 0, 513]),
    "prefix_on_tile_edges": ([128, 256, 127, 129], [128, 130, 385, 1]),
    "long_prefix_short_response": ([1900, 1500], [20, 300]),
    "short_prefix_long_response": ([32, 64, 16], [900, 1200, 700]),
})


def _need_patched():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    reason = FA3_PREFIXLM.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)




@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("case", list(CASES))
def test_single_pass_matches_dense_reference(case, head_dim):
    _need_patched()
    prefix, causal = CASES[case]
    total = sum(prefix) + sum(causal)
    budget = total + 37
    meta = build_batch_metadata(prefix, causal, budget, device="cuda")
    g = torch.Generator().manual_seed(11)
    q, k, v, dout = (torch.randn(budget, 4, head_dim, generator=g).to("cuda", torch.bfloat16) for _ in range(4))
    qg, kg, vg = (x.clone().requires_grad_(True) for x in (q, k, v))
    out = prefixlm_attention(qg, kg, vg, meta, variant="single_pass", backend="fa3")
    out.backward(dout)
    ref = dense_reference_grads(q, k, v, dout, prefix, causal)
    for label, got, want in zip(("out", "dq", "dk", "dv"), (out, qg.grad, kg.grad, vg.grad), ref):
        assert torch.isfinite(got).all(), f"{label} has non-finite values"
        assert got[total:].eq(0).all(), f"{label} padding rows not zero"
        err = _rel(got[:total], want[:total])
        assert err < tolerance(torch.bfloat16), f"{label} rel err {err:.2e}"


def test_matches_two_pass_variant_exactly_enough():
    """Same batch through prefix_rows_add and single_pass: both near the reference, and near each other."""
    _need_patched()
    prefix, causal = CASES["multi_block_mix"]
    budget = sum(prefix) + sum(causal)
    meta = build_batch_metadata(prefix, causal, budget, device="cuda")
    g = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(budget, 2, 128, generator=g).to("cuda", torch.bfloat16) for _ in range(3))
    a = prefixlm_attention(q, k, v, meta, variant="single_pass", backend="fa3")
    b = prefixlm_attention(q, k, v, meta, variant="prefix_rows_add", backend="fa3")
    assert _rel(a, b) < 1e-2
