"""The PrefixLM x document predicate: host and device tables agree, the dense form matches a per-sequence
construction, and tile classes match the dense mask for odd tile shapes."""
from __future__ import annotations

import pytest
import torch

from prefixlm_attn.masks import block_classes, dense_mask, device_token_tables, sequence_mask, token_tables

BATCHES = [([5, 0, 3, 7, 0], [2, 4, 0, 1, 0]), ([0, 0], [3, 1]), ([4, 6], [0, 0]), ([1], [1])]


def _cu(prefix, causal):
    lens = [p + c for p, c in zip(prefix, causal)]
    return torch.tensor([0] + torch.tensor(lens).cumsum(0).tolist(), dtype=torch.int32)


def _by_hand(prefix, causal, budget, is_causal=False):
    m = torch.zeros(budget, budget, dtype=torch.bool)
    row = 0
    for p, c in zip(prefix, causal):
        for i in range(p + c):
            for j in range(p + c):
                m[row + i, row + j] = (j <= i) if is_causal else (j < p or j <= i)
        row += p + c
    return m


@pytest.mark.parametrize("prefix,causal", BATCHES)
@pytest.mark.parametrize("is_causal", [False, True])
def test_dense_mask_is_the_predicate(prefix, causal, is_causal):
    budget = sum(prefix) + sum(causal) + 3
    assert torch.equal(dense_mask(token_tables(prefix, causal, budget), is_causal=is_causal),
                       _by_hand(prefix, causal, budget, is_causal))


@pytest.mark.parametrize("prefix,causal", BATCHES)
def test_device_tables_equal_host_tables(prefix, causal):
    budget = sum(prefix) + sum(causal) + 2
    a = token_tables(prefix, causal, budget)
    b = device_token_tables(_cu(prefix, causal), torch.tensor(prefix, dtype=torch.int32), budget)
    for x, y in zip((a.doc, a.pos, a.plen, a.start), (b.doc, b.pos, b.plen, b.start)):
        assert torch.equal(x, y)


@pytest.mark.parametrize("prefix,causal", BATCHES)
@pytest.mark.parametrize("bq,bk", [(1, 1), (2, 2), (3, 2), (4, 8)])
@pytest.mark.parametrize("is_causal", [False, True])
def test_block_classes_match_the_dense_mask(prefix, causal, bq, bk, is_causal):
    total = sum(prefix) + sum(causal)
    t = token_tables(prefix, causal, total + 5)
    m = dense_mask(t, is_causal=is_causal)
    partial, full = block_classes(t, total, bq, bk, is_causal)
    assert not (partial & full).any()
    for i in range(partial.shape[0]):
        for j in range(partial.shape[1]):
            tile = m[i * bq:min((i + 1) * bq, total), j * bk:min((j + 1) * bk, total)]
            assert bool(full[i, j]) == bool(tile.all())
            assert bool(partial[i, j]) == bool(tile.any() and not tile.all())


def test_sequence_mask():
    m = sequence_mask(4, 2)
    assert m.tolist() == [[True, True, False, False], [True, True, False, False],
                          [True, True, True, False], [True, True, True, True]]
