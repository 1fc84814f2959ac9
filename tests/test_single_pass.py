"""The single-pass variant on the CPU: the reference kernel's mask against the float64 dense
reference on every boundary pattern, and the unavailable reason when the patched FA3 is missing."""
from __future__ import annotations

import pytest
import torch

from bench.harness.patterns import catalogue
from bench.harness.validate import rel_err as _rel
from bench.harness.validate import tolerance
from prefixlm_attn import build_batch_metadata, prefixlm_attention
from prefixlm_attn.backends.fa3_prefixlm import FA3PrefixLMKernel, schema_has_prefix_lens
from prefixlm_attn.backends.single_pass import SinglePassUnavailable, prefixlm_mask, require_single_pass
from prefixlm_attn.dense_reference import dense_reference_grads
from prefixlm_attn.dense_reference import prefixlm_mask as dense_mask
from prefixlm_attn.variants import VARIANTS, LengthsSummary

PATTERNS = {p.name: p for p in catalogue()}




@pytest.mark.parametrize("name", list(PATTERNS))
def test_reference_single_pass_matches_dense(name):
    p = PATTERNS[name]
    meta = build_batch_metadata(list(p.prefix_lens), list(p.causal_lens), p.token_budget, device="cpu")
    g = torch.Generator().manual_seed(7)
    q, k, v, dout = (torch.randn(p.token_budget, 2, 16, generator=g) for _ in range(4))
    total = sum(p.prefix_lens) + sum(p.causal_lens)
    qg, kg, vg = (x.clone().requires_grad_(True) for x in (q, k, v))
    out = prefixlm_attention(qg, kg, vg, meta, variant="single_pass", backend="reference")
    out.backward(dout)
    ref = dense_reference_grads(q, k, v, dout, list(p.prefix_lens), list(p.causal_lens))
    for label, got, want in zip(("out", "dq", "dk", "dv"), (out, qg.grad, kg.grad, vg.grad), ref):
        assert torch.isfinite(got).all(), label
        assert got[total:].eq(0).all(), f"{label} padding rows not zero"
        assert _rel(got[:total], want[:total]) < tolerance(torch.float32), label


def test_single_sequence_mask_is_the_dense_mask():
    for prefix, causal in [(0, 5), (5, 0), (3, 4), (1, 1)]:
        assert torch.equal(prefixlm_mask(prefix + causal, prefix, torch.device("cpu")),
                           dense_mask([prefix], [causal], prefix + causal))


def test_byte_model_has_no_second_buffers_fill_or_add():
    s = LengthsSummary.of([10, 0], [5, 7], 32, heads=2, head_dim=16, dtype=torch.bfloat16)
    counts = VARIANTS["single_pass"].byte_model(s)
    assert counts.allocated == 3 * 32 * s.row_bytes
    assert counts.zero_filled == 0 and counts.added == 0
    assert counts.padding_zeroed == 3 * (32 - 22) * s.row_bytes


def test_unpatched_fa3_reports_unavailable(monkeypatch):
    kernel = FA3PrefixLMKernel()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    import importlib
    real_import = importlib.import_module

    def fake_import(name, *a, **kw):
        if name == "flash_attn_3._C":
            raise ImportError("No module named 'flash_attn_3'")
        return real_import(name, *a, **kw)
    monkeypatch.setattr(importlib, "import_module", fake_import)
    reason = kernel.unavailable_reason()
    assert reason is not None and "flash_attn_3 does not load" in reason and "build.sh" in reason


def test_schema_without_prefix_lens_is_unpatched():
    class Arg:
        def __init__(self, name):
            self.name = name

    class Packet:
        def __init__(self, names):
            self.default = type("D", (), {"_schema": type("S", (), {"arguments": [Arg(n) for n in names]})})
    assert not schema_has_prefix_lens(Packet(["q", "k", "sm_margin"]))
    assert schema_has_prefix_lens(Packet(["q", "k", "sm_margin", "prefix_lens"]))


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU-only: the fa3 single pass must refuse, not fall back")
def test_fa3_single_pass_refuses_without_cuda():
    with pytest.raises(SinglePassUnavailable, match="no CUDA device"):
        require_single_pass("fa3")
    meta = build_batch_metadata([3], [2], 8, device="cpu")
    q = torch.randn(8, 1, 8)
    with pytest.raises(SinglePassUnavailable):
        prefixlm_attention(q, q, q, meta, variant="single_pass", backend="fa3")


def test_batch_without_response_tokens_runs_the_unmasked_kernel():
    from prefixlm_attn.backends.fa3_prefixlm import _mask
    from prefixlm_attn.passes import PassPlan
    from prefixlm_attn.variants import _single_pass_args

    def args(prefix, causal, is_causal=False):
        meta = build_batch_metadata(prefix, causal, 32, device="cpu")
        return _single_pass_args(PassPlan.from_op_args("reference", *meta.op_args(), is_causal, 1.0))

    a = args([10, 6], [0, 0])
    assert a["prefix_lens"] is None and a["max_seqlen"] == 10
    a = args([10, 6], [0, 3])
    assert a["prefix_lens"].tolist() == [10, 6] and a["max_seqlen"] == 10
    assert args([10, 6], [0, 3], is_causal=True)["prefix_lens"].tolist() == [0, 0]
    assert _mask(None) == {"is_causal": False}
    assert _mask(a["prefix_lens"])["is_causal"] is True
