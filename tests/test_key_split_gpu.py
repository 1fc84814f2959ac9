"""On the H100: the Triton row kernels against their torch fallbacks, the rows FA3 writes in both
key-split passes against the reference backend, auto's measured rates, and torch.compile with auto."""
from __future__ import annotations

import pytest
import torch

from prefixlm_attn import auto, build_batch_metadata, prefixlm_attention
from prefixlm_attn.backends import BACKENDS
from prefixlm_attn.key_split import prefix_keys_kwargs, response_keys_kwargs
from prefixlm_attn.passes import PassPlan
from prefixlm_attn.response_rows import add_response_rows_, merge_response_rows_
from tests.test_op import rel_err

pytestmark = pytest.mark.gpu


def _need_fa3():
    if not BACKENDS["fa3"].available():
        pytest.skip("FA3 (flash_attn_3) not importable")


def test_triton_merge_and_add_match_the_torch_fallback():
    g = torch.Generator(device="cuda").manual_seed(0)
    rows, heads, dim, total = 1000, 16, 128, 990
    is_prefix = torch.rand(rows, generator=g, device="cuda") < 0.6
    out_a, out_b, dq, dq_b = (torch.randn(rows, heads, dim, generator=g, device="cuda", dtype=torch.bfloat16)
                              for _ in range(4))
    lse_a, lse_b = (torch.randn(heads, rows, generator=g, device="cuda") for _ in range(2))
    lse_a[:, 5] = float("-inf")
    results = []
    for device in ("cuda", "cpu"):        # the CPU copy takes the torch path
        o, l, d = out_a.clone().to(device), lse_a.clone().to(device), dq.clone().to(device)
        l = merge_response_rows_(o, l, out_b.to(device), lse_b.to(device), is_prefix.to(device), total)
        add_response_rows_(d, dq_b.to(device), is_prefix.to(device), total)
        results.append((o.cpu().float(), l.cpu(), d.cpu().float()))
    (o_gpu, l_gpu, d_gpu), (o_cpu, l_cpu, d_cpu) = results
    assert torch.allclose(o_gpu, o_cpu, atol=1e-2, rtol=1e-2)
    assert torch.allclose(l_gpu[:, :total], l_cpu[:, :total], atol=1e-2, rtol=1e-2)   # rows >= total: unset
    assert torch.allclose(d_gpu, d_cpu, atol=1e-2, rtol=1e-2)
    untouched = (is_prefix.cpu() | (torch.arange(rows) >= total))
    assert torch.equal(results[0][0][untouched], out_a.cpu().float()[untouched])


@pytest.mark.parametrize("heads,dim", [(4, 128), (4, 64), (16, 128)])
def test_triton_merge_is_repeatable_and_exact_on_a_long_response_batch(heads, dim):
    """The batch shape where an in-place lse store once raced with other warps' loads: 20 launches on
    the same inputs all match the float64 merge (a race shows as launch-to-launch differences)."""
    g = torch.Generator(device="cuda").manual_seed(1)
    rows = 2976
    is_prefix = torch.zeros(rows, dtype=torch.bool, device="cuda")
    is_prefix[:32] = True
    is_prefix[932:996] = True
    out_a, out_b = (torch.randn(rows, heads, dim, generator=g, device="cuda").to(torch.bfloat16) for _ in range(2))
    lse_a, lse_b = (4 * torch.randn(heads, rows, generator=g, device="cuda") for _ in range(2))
    total = 2912
    resp = (~is_prefix[:total]).nonzero().squeeze(1)
    la, lb = lse_a[:, resp].double(), lse_b[:, resp].double()
    want_lse = torch.logaddexp(la, lb)
    want_out = ((la - want_lse).exp().T[..., None] * out_a[resp].double()
                + (lb - want_lse).exp().T[..., None] * out_b[resp].double())
    for _ in range(20):
        o, l_in = out_a.clone(), lse_a.clone()
        lse = merge_response_rows_(o, l_in, out_b, lse_b, is_prefix, total)
        assert torch.equal(l_in, lse_a)
        assert torch.allclose(lse[:, resp].double(), want_lse, atol=1e-5, rtol=1e-5)
        assert rel_err(o[resp], want_out) < 5e-3
        assert torch.equal(lse[:, :32], lse_a[:, :32]) and torch.equal(o[:32], out_a[:32])


def _written(buf: torch.Tensor) -> list[int]:
    return (~torch.isnan(buf.float()).flatten(1).any(1)).nonzero().squeeze(1).tolist()


@pytest.mark.parametrize("prefix,causal", [([7], [5]), ([16, 16, 13, 10], [0, 0, 3, 6]), ([0, 4, 0], [5, 3, 2]),
                                           ([3, 0, 4], [2, 0, 1]), ([900, 1500], [60, 20]), ([9, 4], [0, 0])])
def test_fa3_key_split_passes_write_the_reference_rows(prefix, causal):
    """NaN-poisoned out/dq/dk/dv through each key-split pass on both backends: the same rows written."""
    _need_fa3()
    budget = sum(prefix) + sum(causal) + 32
    meta = build_batch_metadata(prefix, causal, budget, device="cuda")
    g = torch.Generator().manual_seed(3)
    q, k, v, dout = (torch.randn(budget, 2, 64, generator=g).to("cuda", torch.bfloat16) for _ in range(4))
    rows = {}
    for backend in ("fa3", "reference"):
        plan = PassPlan.from_op_args(backend, *meta.op_args(), False, 0.125)
        for name, kw in (("A", prefix_keys_kwargs(plan)), ("B", response_keys_kwargs(plan))):
            if kw["max_seqlen_q"] == 0 or kw["max_seqlen_k"] == 0:
                continue
            out, dq, dk, dv = (torch.full_like(q, float("nan")) for _ in range(4))
            lse = plan.backend.forward(q, k, v, out, **kw)
            plan.backend.backward(dout, q, k, v, out.nan_to_num(0.0), lse, dq, dk, dv, **kw)
            torch.cuda.synchronize()
            rows[(backend, name)] = {n: _written(t) for n, t in (("out", out), ("dq", dq), ("dk", dk), ("dv", dv))}
    for name in ("A", "B"):
        if ("fa3", name) in rows:
            assert rows[("fa3", name)] == rows[("reference", name)], name


def test_auto_measures_rates_once_and_records_them():
    _need_fa3()
    meta = build_batch_metadata([1500, 1800, 1200], [60, 40, 90], 4800, device="cuda")
    q = torch.randn(4800, 4, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    prefixlm_attention(q, q, q, meta, variant="auto", backend="fa3").sum().backward()
    choice = auto.last_choice()
    assert choice.model.startswith("measured:")
    assert len(auto._rates) == 1
    prefixlm_attention(q, q, q, meta, variant="auto", backend="fa3")
    assert len(auto._rates) == 1 and auto.last_choice() == choice


def test_compile_fullgraph_with_auto_on_fa3():
    _need_fa3()
    heads, dim, budget = 4, 128, 2048

    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = torch.nn.Linear(heads * dim, 3 * heads * dim, dtype=torch.bfloat16)

        def forward(self, x, meta):
            q, k, v = self.qkv(x).view(budget, 3, heads, dim).unbind(1)
            out = prefixlm_attention(q.contiguous(), k.contiguous(), v.contiguous(), meta, variant="auto",
                                     backend="fa3")
            return out.flatten(1)

    layer = Layer().cuda()
    compiled = torch.compile(layer, fullgraph=True)
    for prefix, causal in (([1500, 400], [50, 30]), ([100], [1800]), ([300, 300, 300], [0, 0, 0])):
        meta = build_batch_metadata(prefix, causal, budget, device="cuda")
        x = torch.randn(budget, heads * dim, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        out = compiled(x, meta)
        out.float().square().sum().backward()
        ex = x.detach().clone().requires_grad_(True)
        eager = layer(ex, meta)
        eager.float().square().sum().backward()
        assert rel_err(out.detach(), eager.detach()) < 1e-2
        assert rel_err(x.grad, ex.grad) < 2e-2
