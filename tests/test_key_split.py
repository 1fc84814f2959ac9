"""The key split and the per-batch pick: pair counts, the row kernels' fallbacks, every validation
pattern against the float64 dense reference, auto's recorded choice, and torch.compile on the CPU."""
from __future__ import annotations

import pytest
import torch

from bench.harness.patterns import catalogue, random_patterns
from prefixlm_attn import build_batch_metadata, prefixlm_attention
from prefixlm_attn.auto import last_choice
from prefixlm_attn.dense_reference import attended_pairs
from prefixlm_attn.pair_counts import BatchPairs, prefixlm_pair_counts, tile_pairs
from prefixlm_attn.response_rows import add_response_rows_, merge_response_rows_
from prefixlm_attn.variants import auto_choice_for
from tests.test_op import check_against_reference

PATTERNS = catalogue() + random_patterns(0, 3)


@pytest.mark.parametrize("variant", ["key_split", "auto"])
@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.name)
def test_every_pattern_matches_dense_reference(variant, pattern):
    check_against_reference(variant, list(pattern.prefix_lens), list(pattern.causal_lens), pattern.token_budget)


def test_both_splits_count_every_prefixlm_pair_once():
    prefix, causal = [5, 0, 7, 3], [2, 4, 0, 9]
    passes = prefixlm_pair_counts(prefix, causal).passes
    want = attended_pairs(prefix, causal)
    assert passes["bidir"].exact + passes["causal"].exact == want
    assert passes["key_prefix"].exact + passes["key_response"].exact == want


def test_tile_pairs_count_visited_tiles():
    assert tile_pairs(10, 300, False, (128, 128)) == 1 * 3 * 128 * 128
    assert tile_pairs(256, 256, True, (128, 128)) == 3 * 128 * 128           # lower triangle of 2 x 2 tiles
    assert tile_pairs(60, 1560, True, (64, 128)) == 13 * 64 * 128             # short response, long keys
    assert tile_pairs(0, 5, True, (64, 128)) == 0 and tile_pairs(5, 0, False, (64, 128)) == 0


def test_pair_counts_round_trip_through_the_metadata_tensor():
    meta = build_batch_metadata([40, 0, 3], [2, 9, 0], 64)
    assert meta.pair_counts.device.type == "cpu" and meta.pair_counts.dtype == torch.int64
    assert BatchPairs.from_tensor(meta.pair_counts) == prefixlm_pair_counts([40, 0, 3], [2, 9, 0])


def test_merge_touches_response_rows_only_and_is_exact():
    g = torch.Generator().manual_seed(0)
    rows, heads, dim, total = 9, 3, 4, 7
    is_prefix = torch.tensor([1, 1, 0, 0, 1, 0, 0, 0, 0], dtype=torch.bool)
    out_a, out_b = torch.randn(rows, heads, dim, generator=g), torch.randn(rows, heads, dim, generator=g)
    lse_a, lse_b = torch.randn(heads, rows, generator=g), torch.randn(heads, rows, generator=g)
    lse_a[:, 3] = float("-inf")                      # a response row with no prefix keys
    out, lse_in = out_a.clone(), lse_a.clone()
    lse = merge_response_rows_(out, lse_in, out_b, lse_b, is_prefix, total)
    assert torch.equal(lse_in, lse_a) and lse.data_ptr() != lse_in.data_ptr()   # the inputs are only read
    for r in range(rows):
        if r >= total:
            assert torch.equal(out[r], out_a[r])
            continue
        if is_prefix[r]:
            assert torch.equal(out[r], out_a[r]) and torch.equal(lse[:, r], lse_a[:, r])
            continue
        want_lse = torch.logaddexp(lse_a[:, r], lse_b[:, r])
        w_a, w_b = torch.exp(lse_a[:, r] - want_lse), torch.exp(lse_b[:, r] - want_lse)
        assert torch.allclose(lse[:, r], want_lse)
        assert torch.allclose(out[r], w_a[:, None] * out_a[r] + w_b[:, None] * out_b[r], atol=1e-6)
    assert torch.allclose(out[3], out_b[3])


def test_dq_add_touches_response_rows_only():
    is_prefix = torch.tensor([1, 0, 0, 1, 0, 0], dtype=torch.bool)
    dst, src = torch.ones(6, 2, 3), torch.full((6, 2, 3), 2.0)
    add_response_rows_(dst, src, is_prefix, total=5)
    assert dst[:, 0, 0].tolist() == [1.0, 3.0, 3.0, 1.0, 3.0, 1.0]


def test_auto_records_its_choice_and_it_changes_with_the_batch():
    picks = {}
    for name, prefix, causal in (("sft", [1500, 1800, 1200], [60, 40, 90]),
                                 ("short_prefix", [16, 24, 8], [1400, 1300, 1500])):
        budget = sum(prefix) + sum(causal) + 8
        meta = build_batch_metadata(prefix, causal, budget)
        q = torch.randn(budget, 2, 16, requires_grad=True)
        prefixlm_attention(q, q, q, meta, variant="auto", backend="reference").sum().backward()
        choice = last_choice()
        assert set(choice.predicted_ms) == {"prefix_rows_add", "key_split"}
        best = min(choice.predicted_ms, key=lambda n: choice.predicted_ms[n]["total"])
        assert choice.variant == best and choice.model == "fixed"
        assert auto_choice_for(q.detach(), meta, "reference") == choice     # the sweep's record agrees
        picks[name] = choice.variant
    assert picks == {"sft": "key_split", "short_prefix": "prefix_rows_add"}


def test_auto_runs_the_query_split_for_plain_causal_attention():
    meta = build_batch_metadata([30], [4], 40)
    q = torch.randn(40, 2, 8)
    prefixlm_attention(q, q, q, meta, variant="auto", backend="reference", is_causal=True)
    assert last_choice().variant == "prefix_rows_add" and last_choice().model == "is_causal"


def test_compile_fullgraph_with_auto_on_cpu():
    """auto's pick reads only CPU metadata inside the custom op: one graph for batches that pick differently."""
    budget, heads, dim = 96, 2, 8

    def layer(x, meta):
        return prefixlm_attention(x, x * 0.5, x * 2.0, meta, variant="auto", backend="reference")

    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    seen = set()
    for prefix, causal in (([60, 20], [4, 2]), ([4, 6], [40, 30]), ([50], [0])):
        meta = build_batch_metadata(prefix, causal, budget)
        x = torch.randn(budget, heads, dim, requires_grad=True)
        compiled(x, meta).square().sum().backward()
        seen.add(last_choice().variant)
        ex = x.detach().clone().requires_grad_(True)
        layer(ex, meta).square().sum().backward()
        assert torch.allclose(x.grad, ex.grad, atol=1e-5)
    assert seen == {"prefix_rows_add", "key_split"}
