"""The FA4 single-pass variants on the reference backend: the dense reference's results, every row of every
sequence written, the block-mask phases timed, the tile lists, the byte model, and a clear refusal on a
backend without FA4's mask_mod."""
from __future__ import annotations

import types

import pytest
import torch

from prefixlm_attn import build_batch_metadata, prefixlm_attention
from prefixlm_attn.dense_reference import dense_reference_grads
from prefixlm_attn.phases import observing
from prefixlm_attn.single_pass import FORMS, VariantUnavailable, pack_tiles, tile_list_bytes
from prefixlm_attn.variants import VARIANTS, LengthsSummary, variant_availability

CASES = {"mixed": ([300, 40, 0, 200, 90], [100, 250, 60, 0, 160]), "no_causal": ([129, 7], [0, 0]),
         "no_prefix": ([0, 0], [3, 130]), "tiny": ([1], [0])}


@pytest.mark.parametrize("variant", list(FORMS))
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("is_causal", [False, True])
def test_matches_the_dense_reference(variant, case, is_causal):
    prefix, causal = CASES[case]
    budget = sum(prefix) + sum(causal) + 9
    meta = build_batch_metadata(prefix, causal, budget)
    g = torch.Generator().manual_seed(1)
    q, k, v, dout = (torch.randn(budget, 2, 16, generator=g) for _ in range(4))
    ref = dense_reference_grads(q, k, v, dout, prefix, causal, is_causal=is_causal)
    qq, kk, vv = (t.clone().requires_grad_(True) for t in (q, k, v))
    out = prefixlm_attention(qq, kk, vv, meta, variant=variant, backend="reference", is_causal=is_causal)
    out.backward(dout)
    for got, want in zip((out, qq.grad, kk.grad, vv.grad), ref):
        assert torch.allclose(got.double(), want, atol=1e-4, rtol=1e-4)
        assert torch.equal(got[budget - 9:], torch.zeros_like(got[budget - 9:]))   # padding rows


class Names:
    def __init__(self) -> None:
        self.names: list[str] = []

    def begin(self, name: str) -> None:
        self.names.append(name)

    def end(self, name: str) -> None:
        pass


@pytest.mark.parametrize("variant", list(FORMS))
def test_block_mask_is_its_own_phase(variant):
    meta = build_batch_metadata([40, 8], [24, 0], 80)
    q = torch.randn(80, 2, 16, requires_grad=True)
    with observing(Names()) as seen:
        prefixlm_attention(q, q, q, meta, variant=variant, backend="reference").sum().backward()
    assert seen.names.index("fwd.block_mask") < seen.names.index("fwd.single_pass")
    assert seen.names.index("bwd.block_mask") < seen.names.index("bwd.single_pass")
    assert not {"fwd.bidir_pass", "fwd.causal_pass", "bwd.zero_fill", "bwd.accumulate"} & set(seen.names)


def test_unavailable_on_a_backend_without_the_kernel():
    why = variant_availability("fa4_single_pass_sparse", "fa3")
    assert why is not None and "fa3" in why.reason
    assert variant_availability("prefix_rows_add", "fa3") is None
    assert variant_availability("fa4_single_pass_masked", "reference") is None
    assert "head dim" in variant_availability("fa4_single_pass_sparse", "reference", head_dim=256).reason
    from prefixlm_attn.single_pass import availability
    with pytest.raises(VariantUnavailable):
        from prefixlm_attn.single_pass import _require
        _require(types.SimpleNamespace(backend=types.SimpleNamespace(name="x", single_pass_variants=())),
                 "fa4_single_pass_sparse", 64)
    assert availability("fa4_single_pass_masked", types.SimpleNamespace(name="x", single_pass_variants=()))


def test_the_sweep_skips_it_with_the_reason():
    from bench.harness.peers.base import PeerUnsupported
    from bench.harness.registry import registry
    w = types.SimpleNamespace(q=torch.zeros(4, 2, 64))
    with pytest.raises(PeerUnsupported, match="no kernel on backend fa3"):
        registry()["fa4_single_pass_sparse"].prepare(w, "fa3")


def test_tile_lists_pack_true_columns_first_ascending():
    rows = torch.tensor([[False, True, False, True], [False, False, False, False], [True, True, True, True]])
    cnt, idx = pack_tiles(rows)
    assert cnt.shape == (1, 1, 3) and idx.shape == (1, 1, 3, 4)
    assert cnt[0, 0].tolist() == [2, 0, 4]
    assert idx[0, 0, 0, :2].tolist() == [1, 3] and idx[0, 0, 2].tolist() == [0, 1, 2, 3]


def test_byte_model_has_no_fill_and_no_add():
    s = LengthsSummary.of([300, 40], [100, 0], 512, heads=2, head_dim=16, dtype=torch.bfloat16)
    for name in FORMS:
        c = VARIANTS[name].byte_model(s)
        assert c.zero_filled == 0 and c.added == 0
        assert c.padding_zeroed == 3 * (512 - 440) * s.row_bytes
    sparse, masked = (VARIANTS[n].byte_model(s) for n in FORMS)
    assert sparse.allocated - masked.allocated == 2 * 4 * 440 + tile_list_bytes(440)
