"""Batch metadata: padded fixed-shape tensors, CPU scalars, and one clear error per bad input."""
import pytest
import torch

from prefixlm_attn.metadata import InvalidLengths, build_batch_metadata


def test_padded_tensors_and_scalars():
    meta = build_batch_metadata([3, 0, 2], [1, 4, 0], token_budget=16)
    assert meta.prefix_lens.shape == (17,) and meta.cu_seqlens.shape == (17,)
    assert meta.cu_seqlens[:4].tolist() == [0, 4, 8, 10]
    assert meta.cu_seqlens[4:].eq(10).all()                   # padded with the total
    assert meta.prefix_lens[3:].eq(0).all() and meta.causal_lens[3:].eq(0).all()
    assert [int(x) for x in (meta.total_tokens, meta.num_seqs, meta.max_prefix, meta.max_causal,
                             meta.max_total)] == [10, 3, 3, 4, 4]
    assert all(t.device.type == "cpu" and t.dim() == 0 for t in meta.op_args()[4:])
    assert meta.row_is_prefix.nonzero().squeeze(1).tolist() == [0, 1, 2, 8, 9]


def test_same_shapes_for_every_batch():
    a = build_batch_metadata([5], [5], token_budget=32)
    b = build_batch_metadata([1, 2, 3, 4], [0, 0, 1, 1], token_budget=32)
    assert [t.shape for t in a.op_args()] == [t.shape for t in b.op_args()]


@pytest.mark.parametrize("prefix, causal, budget, message", [
    ([3, -1], [1, 1], 16, "prefix_lens[1] = -1 is negative"),
    ([3, 1], [1, 2.5], 16, "causal_lens[1] = 2.5 is not an integer"),
    ([3, 1], [1, "x"], 16, "causal_lens[1] = 'x' is not an integer"),
    ([10, 10], [1, 1], 16, "total tokens 22 exceed the token budget 16"),
    ([], [], 16, "empty batch"),
    ([0, 0], [0, 0], 16, "every sequence has zero tokens"),
    ([1, 2], [1], 16, "prefix_lens has 2 entries but causal_lens has 1"),
    ([True], [1], 16, "prefix_lens[0] = True is not an integer"),
])
def test_invalid_lengths_name_the_value(prefix, causal, budget, message):
    with pytest.raises(InvalidLengths, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_batch_metadata(prefix, causal, token_budget=budget)


def test_integral_floats_and_tensors_accepted():
    meta = build_batch_metadata(torch.tensor([4, 2]), [1.0, 0.0], token_budget=8)
    assert meta.prefix_list == (4, 2) and meta.causal_list == (1, 0)


def test_sequence_capacity():
    with pytest.raises(InvalidLengths, match="exceed the sequence capacity 2"):
        build_batch_metadata([1, 1, 1], [0, 0, 0], token_budget=8, max_seqs=2)
