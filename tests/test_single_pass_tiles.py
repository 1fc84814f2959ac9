"""The single pass's backward tile choice: the environment override, the auto default (narrow, as
measured), and what reaches the patched FA3 op (`prefix_wide_tiles` only where the build takes it)."""
from __future__ import annotations

import pytest
import torch

import prefixlm_attn.backends.single_pass as single_pass_mod
from prefixlm_attn import build_batch_metadata, prefixlm_attention
from prefixlm_attn.backends.fa3_prefixlm import FA3PrefixLMKernel
from prefixlm_attn.backends.single_pass import ReferenceSinglePass
from prefixlm_attn.single_pass_tiles import TILES_ENV, InvalidTilesChoice, single_pass_wide_tiles


@pytest.mark.parametrize("value, wide", [(None, False), ("auto", False), ("narrow", False), ("wide", True),
                                         (" WIDE ", True), ("", False)])
def test_environment_picks_the_tiles(monkeypatch, value, wide):
    if value is None:
        monkeypatch.delenv(TILES_ENV, raising=False)
    else:
        monkeypatch.setenv(TILES_ENV, value)
    assert single_pass_wide_tiles() is wide


def test_unknown_choice_is_refused(monkeypatch):
    monkeypatch.setenv(TILES_ENV, "medium")
    with pytest.raises(InvalidTilesChoice, match="wide, narrow, auto"):
        single_pass_wide_tiles()


def test_flag_reaches_the_op_only_with_a_prefix_mask_and_a_build_that_takes_it():
    kernel = FA3PrefixLMKernel()
    prefix = torch.tensor([3, 0], dtype=torch.int32)
    kernel._bwd_has_wide_tiles = True
    assert kernel._tiles(prefix, True) == {"prefix_wide_tiles": True}
    assert kernel._tiles(prefix, False) == {}
    assert kernel._tiles(None, True) == {}          # unmasked kernel: no causal tiles to widen
    kernel._bwd_has_wide_tiles = False              # a build from before the flag
    assert kernel._tiles(prefix, True) == {}


class _RecordingKernel(ReferenceSinglePass):
    def __init__(self):
        self.wide_tiles_seen: list[bool] = []

    def backward(self, *args, wide_tiles: bool = False, **kwargs) -> None:
        self.wide_tiles_seen.append(wide_tiles)
        super().backward(*args, **kwargs)


@pytest.mark.parametrize("value, wide", [("wide", True), ("narrow", False), ("auto", False)])
def test_variant_reads_the_choice_at_call_time(monkeypatch, value, wide):
    recorder = _RecordingKernel()
    monkeypatch.setattr(single_pass_mod, "require_single_pass", lambda backend: recorder)
    monkeypatch.setenv(TILES_ENV, value)
    meta = build_batch_metadata([5, 3], [2, 4], 16, device="cpu")
    q = torch.randn(16, 2, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    prefixlm_attention(q, q, q, meta, variant="single_pass", backend="reference").sum().backward()
    assert recorder.wide_tiles_seen == [wide]
    assert torch.isfinite(q.grad).all()
