"""bench/harness/transformer_block.py on the reference backend: gradients flow, the op's rows are used, and every
variant that survives a batch gives the same block."""
from __future__ import annotations

import pytest
import torch

from bench.spec.grid import Config
from bench.harness.workloads import build_workload
from bench.harness.timing import Clock, L2Flusher, timed_round
from bench.harness.transformer_block import (BlockShape, block_forward, block_implementation, build_block,
                                     prepare_block)
from prefixlm_attn.dense_reference import dense_prefixlm_attention

SMALL = Config("sft_long_prompt", tokens=256, heads=2, head_dim=16, dtype="float32", seed=3, context=128)


def _run(config: Config, variant: str):
    w = build_workload(config, "cpu")
    forward, params, shape = build_block(w, "reference", variant)
    out = forward()
    out.backward(w.dout)
    return w, out.detach(), params, shape


def test_shapes_and_defaults() -> None:
    shape = BlockShape(heads=16, head_dim=128)
    assert shape.hidden == 2048 and shape.mlp == 4 * 2048
    assert BlockShape(2, 16, mlp_hidden=40).mlp == 40
    assert shape.matmul_flops(10) == 2 * 10 * (4 * 2048 ** 2 + 3 * 2048 * 8192)


def test_gradients_flow_to_every_weight_and_the_input() -> None:
    w, out, params, _ = _run(SMALL, "prefix_rows_add")
    assert out.shape == (SMALL.tokens, SMALL.heads, SMALL.head_dim) and torch.isfinite(out).all()
    for name, p in params.items():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert w.q.grad is not None and w.q.grad[: w.batch.total_tokens].abs().sum() > 0


def test_the_block_uses_the_ops_output_rows() -> None:
    """Same block with the dense PrefixLM reference as attention: equal outputs, so the op's rows feed the block."""
    w, out, params, shape = _run(SMALL, "prefix_rows_add")
    dense = lambda q, k, v: dense_prefixlm_attention(q, k, v, w.batch.prefix_lens, w.batch.causal_lens,  # noqa: E731
                                                     dtype=torch.float64).to(q.dtype)
    with torch.no_grad():
        x = w.q.reshape(SMALL.tokens, shape.hidden)
        expected = block_forward(x, params, shape, dense).view_as(out)
        no_attention = block_forward(x, params, shape, lambda q, k, v: torch.zeros_like(q)).view_as(out)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(out, no_attention, atol=1e-3)          # attention really changes the result


@pytest.mark.parametrize("distribution", ["sft_long_prompt", "no_causal"])
def test_variants_give_the_same_block(distribution: str) -> None:
    cfg = Config(distribution, tokens=256, heads=2, head_dim=16, dtype="float32", seed=1, context=128)
    base_w, base_out, base_params, _ = _run(cfg, "prefix_rows_add")
    for variant in ("zeros_always", "guarded_zero_fill", "guarded_passthrough"):
        w, out, params, _ = _run(cfg, variant)
        torch.testing.assert_close(out, base_out, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(w.q.grad, base_w.q.grad, rtol=1e-4, atol=1e-5)
        for name in params:
            torch.testing.assert_close(params[name].grad, base_params[name].grad, rtol=1e-4, atol=1e-5)


def test_the_harness_times_it_like_the_bare_op() -> None:
    w = build_workload(SMALL, "cpu")
    impl = block_implementation("guarded_passthrough")
    assert impl.name == "block:guarded_passthrough" and impl.kind == "block"
    prepared = impl.prepare(w, "reference")
    assert prepared.notes["block"]["hidden"] == 32 and prepared.notes["block"]["mlp_hidden"] == 128
    bare = prepare_block(w, "reference", "prefix_rows_add")
    calls = {"block:guarded_passthrough": prepared.forward, "block:prefix_rows_add": bare.forward}
    result = timed_round(calls, w.dout, w.clear_grads, Clock(w.device), L2Flusher(w.device, False), 0)
    assert set(result) == set(calls) and all(r["backward"] > 0 for r in result.values())
    with pytest.raises(ValueError, match="unknown variant"):
        block_implementation("no_such_variant")
