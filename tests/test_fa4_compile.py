"""Every FA4 form this project calls compiles for fake tensors on the CPU (sm_90a), forward and backward:
API drift (a renamed keyword, a refused layout, block-sparse shapes) shows here before the GPU.
Skipped when FA4 (flash-attn-4 and its CuTe DSL) is not installed; takes a minute or two (CuTe DSL compiles)."""
from __future__ import annotations

import dataclasses
import os

import pytest
import torch

os.environ.setdefault("FLASH_ATTENTION_ARCH", "sm_90a")
os.environ.setdefault("CUTE_DSL_ARCH", "sm_90a")
os.environ.setdefault("FLASH_ATTENTION_NUM_SMS", "132")
pytest.importorskip("flash_attn.cute.interface", reason="flash-attn-4 is not installed")

from torch._subclasses.fake_tensor import FakeTensorMode  # noqa: E402

from prefixlm_attn import build_batch_metadata  # noqa: E402
from prefixlm_attn.backends.fa4 import FA4Backend  # noqa: E402
from prefixlm_attn.passes import PassPlan  # noqa: E402
from prefixlm_attn.single_pass import FORMS, SinglePassInputs, build_inputs  # noqa: E402

PREFIX, CAUSAL, HEADS, HEAD_DIM = [200, 40, 0], [60, 150, 30], 2, 128
BUDGET = sum(PREFIX) + sum(CAUSAL) + 32


def _plan(device: str) -> PassPlan:
    meta = build_batch_metadata(PREFIX, CAUSAL, BUDGET, device=device)
    return PassPlan.from_op_args("reference", *meta.op_args(), False, HEAD_DIM ** -0.5)


@pytest.fixture(scope="module")
def backend() -> FA4Backend:
    return FA4Backend()


def _fake_cuda(t: torch.Tensor) -> torch.Tensor:
    return torch.empty(t.shape, dtype=t.dtype, device="cuda")


@pytest.mark.parametrize("pass_name", ["bidir", "causal"])
def test_two_pass_forms_compile(backend, pass_name):
    plan = _plan("cpu")
    kw = plan.bidir_kwargs() if pass_name == "bidir" else plan.causal_kwargs()
    with FakeTensorMode(allow_non_fake_inputs=True):
        q, k, v, dout = (torch.empty(BUDGET, HEADS, HEAD_DIM, dtype=torch.bfloat16, device="cuda") for _ in range(4))
        kw = {n: (_fake_cuda(x.to(torch.int32)) if isinstance(x, torch.Tensor) else x) for n, x in kw.items()}
        out = torch.empty_like(q)
        lse = backend.forward(q, k, v, out, **kw)
        assert tuple(lse.shape) == (HEADS, BUDGET)
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        backend.backward(dout, q, k, v, out, lse, dq, dk, dv, **kw)


def _as_fake_cuda(inputs: SinglePassInputs) -> SinglePassInputs:
    """The same inputs with every tensor a fake CUDA tensor of its shape (built on the CPU first: a CPU-only
    torch runs no CUDA op even on fake tensors)."""
    def conv(t):
        return torch.empty(t.shape, dtype=t.dtype, device="cuda") if isinstance(t, torch.Tensor) else t
    tiles = inputs.tiles
    if tiles is not None:
        tiles = dataclasses.replace(tiles, **{f.name: conv(getattr(tiles, f.name))
                                              for f in dataclasses.fields(tiles) if f.name != "block"})
    fields = {f.name: conv(getattr(inputs, f.name)) for f in dataclasses.fields(inputs) if f.name != "tiles"}
    return SinglePassInputs(**fields, tiles=tiles)


@pytest.mark.parametrize("variant", list(FORMS))
def test_single_pass_forms_compile(backend, variant):
    """Each form in the shape its call takes (varlen [T, H, D]; packed [1, total, H, D], lse [1, H, total]);
    the row views themselves need a CUDA build of torch even on fake tensors, so they are left out here."""
    plan = _plan("cpu")
    fwd, bwd = (build_inputs(plan, FORMS[variant], d) for d in ("forward", "backward"))
    packed = fwd.tiles is not None
    rows = (1, plan.total) if packed else (BUDGET,)
    before = backend.compile_cache_entries() or 0
    with FakeTensorMode(allow_non_fake_inputs=True):
        fwd, bwd = _as_fake_cuda(fwd), _as_fake_cuda(bwd)
        q, k, v, dout, out, dq, dk, dv = (torch.empty(*rows, HEADS, HEAD_DIM, dtype=torch.bfloat16, device="cuda")
                                          for _ in range(8))
        lse = torch.empty((1, HEADS, plan.total) if packed else (HEADS, BUDGET), device="cuda")
        backend.single_pass_forward_shaped(q, k, v, out, lse, inputs=fwd)
        backend.single_pass_backward_shaped(dout, q, k, v, out, lse, dq, dk, dv, inputs=bwd)
    assert backend.compile_cache_entries() >= before + 2     # a forward and a backward kernel


def test_varlen_backward_refuses_block_sparsity(backend):
    """Why the sparse form packs the batch into one sequence: FA4's varlen backward asserts on block sparsity."""
    inputs = build_inputs(_plan("cpu"), "sparse", "backward")
    with FakeTensorMode(allow_non_fake_inputs=True):
        inputs = _as_fake_cuda(inputs)
        call = FA4Backend._single_pass_call(inputs)
        q = torch.empty(BUDGET, HEADS, HEAD_DIM, dtype=torch.bfloat16, device="cuda")
        with pytest.raises(AssertionError, match="Varlen backward with block sparsity"):
            backend._load()._flash_attn_bwd(q=q, k=q, v=q, out=q, dout=q, lse=torch.empty(HEADS, BUDGET, device="cuda"),
                                            cu_seqlens_q=inputs.cu_seqlens, cu_seqlens_k=inputs.cu_seqlens,
                                            max_seqlen_q=inputs.max_seqlen, max_seqlen_k=inputs.max_seqlen, **call)
