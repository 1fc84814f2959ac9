"""Every variant against the dense-mask reference: out, dq, dk, dv, padding rows, and the crashes."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prefixlm_attn import VARIANTS, build_batch_metadata, prefixlm_attention
from prefixlm_attn.backends import KernelCrash
from prefixlm_attn.backends.reference import reset_dead_context
from prefixlm_attn.dense_reference import attended_pairs, dense_reference_grads, prefixlm_mask

HAND_PICKED = {
    "single_sequence": ([7], [5]),
    "mixed_zero_causal": ([16, 16, 13, 10], [0, 0, 3, 6]),   # the PR's shape, scaled down
    "all_zero_causal": ([9, 4, 6], [0, 0, 0]),
    "one_token_response": ([6, 3], [1, 1]),
    "prefix_fills_context": ([31], [1]),
    "all_zero_prefix": ([0, 0], [5, 3]),
    "mixed_zero_prefix": ([0, 4], [5, 3]),
    "empty_sequence_inside": ([3, 0, 4], [2, 0, 1]),
    "one_token_total": ([1], [0]),
}


def expected_crash(variant_name: str, prefix: list[int], causal: list[int]) -> bool:
    """FA3's backward dies on max_seqlen_q == 0; a variant crashes when it runs such a pass."""
    v = VARIANTS[variant_name]
    return (max(causal) == 0 and not v.skip_empty_causal) or (max(prefix) == 0 and not v.skip_empty_prefix)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b||, with ||b|| floored at 1 so an all-zero reference (dq of a one-token
    sequence) is compared absolutely instead of dividing rounding noise by zero."""
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1.0)).item()


def run_case(variant: str, prefix: list[int], causal: list[int], budget: int, heads=2, head_dim=8,
             device="cpu", dtype=torch.float32, backend="reference", seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    q, k, v, dout = (torch.randn(budget, heads, head_dim, generator=g).to(device, dtype) for _ in range(4))
    for t in (q, k, v):
        t.requires_grad_(True)
    meta = build_batch_metadata(prefix, causal, budget, device=device)
    out = prefixlm_attention(q, k, v, meta, variant=variant, backend=backend)
    out.backward(dout)
    ref = dense_reference_grads(q.detach().cpu(), k.detach().cpu(), v.detach().cpu(), dout.cpu(), prefix, causal,
                                dtype=torch.float64)
    got = (out.detach().cpu(), q.grad.cpu(), k.grad.cpu(), v.grad.cpu())
    return got, ref, meta.total


def check_against_reference(variant, prefix, causal, budget, tol=1e-5, **kw):
    if expected_crash(variant, prefix, causal):
        with pytest.raises(KernelCrash, match="CUTLASS error"):
            run_case(variant, prefix, causal, budget, **kw)
        reset_dead_context()
        return
    got, ref, total = run_case(variant, prefix, causal, budget, **kw)
    for name, a, b in zip(("out", "dq", "dk", "dv"), got, ref):
        assert torch.isfinite(a).all(), f"{variant}: {name} has non-finite values"
        assert a[total:].eq(0).all(), f"{variant}: {name} padding rows are not zero"
        assert rel_err(a[:total], b[:total]) < tol, f"{variant}: {name} rel err {rel_err(a[:total], b[:total])}"


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("case", list(HAND_PICKED))
def test_hand_picked(variant, case):
    prefix, causal = HAND_PICKED[case]
    check_against_reference(variant, prefix, causal, budget=sum(prefix) + sum(causal) + 5)


def test_prefix_fills_budget_exactly():
    for variant in VARIANTS:
        check_against_reference(variant, [15, 8], [1, 8], budget=32)   # no padding rows at all


lengths = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 6)), min_size=1, max_size=5).filter(
    lambda seqs: sum(p + c for p, c in seqs) > 0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seqs=lengths, slack=st.integers(0, 4), variant=st.sampled_from(list(VARIANTS)))
def test_random_lengths(seqs, slack, variant):
    prefix, causal = [p for p, _ in seqs], [c for _, c in seqs]
    # the sequence capacity defaults to the token budget, so empty sequences need budget rows too
    budget = max(sum(prefix) + sum(causal), len(seqs)) + slack
    check_against_reference(variant, prefix, causal, budget=budget)


def test_is_causal_makes_plain_causal_attention():
    prefix, causal, budget = [5, 3], [2, 4], 16
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(budget, 2, 8, generator=g, requires_grad=True) for _ in range(3))
    meta = build_batch_metadata(prefix, causal, budget)
    out = prefixlm_attention(q, k, v, meta, backend="reference", is_causal=True)
    ref = dense_reference_grads(q, k, v, torch.ones_like(q), prefix, causal, is_causal=True)[0]
    assert rel_err(out.detach()[:14], ref[:14]) < 1e-5


def test_dense_mask_and_pair_count_agree():
    prefix, causal = [4, 0, 3], [2, 3, 0]
    mask = prefixlm_mask(prefix, causal, 16)
    assert int(mask.sum()) == attended_pairs(prefix, causal)
    assert bool(mask[4, 3]) is True             # causal row 4 sees the prefix of its sequence
    assert bool(mask[3, 5]) is False            # prefix row 3 does not see the causal row 5 after it
    assert bool(mask[5, 4]) is True


def test_unknown_variant_is_a_clear_error():
    meta = build_batch_metadata([2], [2], 4)
    q = torch.randn(4, 1, 8)
    with pytest.raises(ValueError, match="unknown variant 'nope'"):
        prefixlm_attention(q, q, q, meta, variant="nope", backend="reference")


def test_compile_fullgraph_on_cpu():
    """The custom ops trace under torch.compile(fullgraph=True); aot_eager keeps the CPU test fast."""
    budget, heads, dim = 24, 2, 8

    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(dim, 3 * dim)

        def forward(self, x, meta_args):
            q, k, v = self.proj(x).chunk(3, dim=-1)
            from prefixlm_attn.op import prefixlm_fwd
            return prefixlm_fwd(q.contiguous(), k.contiguous(), v.contiguous(), *meta_args,
                                False, dim ** -0.5, "prefix_rows_add", "reference")[0]

    layer = Layer()
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    for prefix, causal in (([5, 6], [3, 0]), ([10], [4])):
        meta = build_batch_metadata(prefix, causal, budget)
        x = torch.randn(budget, heads, dim, requires_grad=True)
        out = compiled(x, meta.op_args())
        out.sum().backward()
        eager_x = x.detach().clone().requires_grad_(True)
        eager = layer(eager_x, meta.op_args())
        eager.sum().backward()
        assert rel_err(out.detach(), eager.detach()) < 1e-6
        assert rel_err(x.grad, eager_x.grad) < 1e-5
