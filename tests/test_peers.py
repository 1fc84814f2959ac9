"""Peers: each matches its dense reference on the CPU, padding rows are zero, refusals are clear."""
from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import bench.harness.peers.check as peers_check
from bench.spec.grid import Config
from bench.harness.workloads import build_workload
from bench.harness.peers import PEERS, PeerUnsupported, check_peer
from bench.harness.peers.base import CAUSAL, PeerCheckFailed, row_tables
from bench.harness.peers.bounds import bidir_pairs, causal_pairs, prepare_bidir_bound
from bench.harness.peers.flex import flex_forward, flex_fn, prefixlm_mask_mod, workload_block_mask
from prefixlm_attn.dense_reference import attended_pairs, dense_prefixlm_attention, prefixlm_mask

CPU_PEERS = ["fa3_causal_bound", "fa3_bidir_bound", "sdpa_dense"]
DISTRIBUTIONS = ["sft_long_prompt", "short_prefix_long_response", "no_causal"]


def tiny(distribution: str = "sft_long_prompt", dtype: str = "float32", tokens: int = 256):
    config = Config(distribution=distribution, tokens=tokens, heads=2, head_dim=32, dtype=dtype, context=128)
    return build_workload(config, "cpu")


def test_registry_holds_the_peers_as_kind_peer():
    assert set(PEERS) == {"flex_attention", "sdpa_dense", "fa3_causal_bound", "fa3_bidir_bound", "fa4_causal_bound",
                          "fa4_bidir_bound"}
    assert all(p.kind == "peer" and p.name == n for n, p in PEERS.items())


@pytest.mark.parametrize("name", CPU_PEERS)
@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_cpu_peer_matches_its_dense_reference(name, distribution):
    w = tiny(distribution)
    prepared = PEERS[name].prepare(w, "reference")
    check = prepared.notes["check"]
    assert check["ok"] and check["padding_zero"] and check["max_rel_err"] < 1e-5
    assert check["checked_tokens"] == w.meta.total < w.shape.tokens     # padding rows were checked


@pytest.mark.parametrize("name", CPU_PEERS)
def test_padding_rows_of_out_and_grads_are_zero(name):
    w = tiny("short_prefix_long_response")
    out = PEERS[name].prepare(w, "reference").forward()
    out.backward(w.dout)
    total = w.meta.total
    for t in (out, w.q.grad, w.k.grad, w.v.grad):
        assert t.shape == w.q.shape and torch.count_nonzero(t[total:]) == 0
        assert torch.isfinite(t).all()


def test_prefixlm_peer_matches_the_op_reference_in_bfloat16():
    w = tiny(dtype="bfloat16")
    check = PEERS["sdpa_dense"].prepare(w, "reference").notes["check"]
    assert check["ok"] and check["tolerance"] == 2e-2


def test_work_pairs_say_what_each_peer_computes():
    w = tiny()
    totals = [p + c for p, c in zip(w.batch.prefix_lens, w.batch.causal_lens)]
    pairs = {n: PEERS[n].prepare(w, "reference").notes["attended_pairs"] for n in CPU_PEERS}
    prefixlm = attended_pairs(w.batch.prefix_lens, w.batch.causal_lens)
    assert pairs == {"fa3_causal_bound": causal_pairs(totals), "fa3_bidir_bound": bidir_pairs(totals),
                     "sdpa_dense": prefixlm}
    assert pairs["fa3_causal_bound"] < prefixlm < pairs["fa3_bidir_bound"]
    assert causal_pairs([3]) == 6 and bidir_pairs([3]) == 9


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_flex_mask_mod_is_the_dense_prefixlm_mask(distribution):
    from torch.nn.attention.flex_attention import create_mask
    w = tiny(distribution)
    mask = create_mask(prefixlm_mask_mod(*row_tables(w)), 1, 1, 256, 256, device="cpu")[0, 0]
    assert torch.equal(mask, prefixlm_mask(w.batch.prefix_lens, w.batch.causal_lens, 256))


def test_flex_forward_matches_reference_with_zero_padding():
    w = tiny("short_prefix_long_response")
    q, k, v = (x.detach() for x in w.leaves())
    with pytest.warns(UserWarning):    # eager flex on the CPU warns that it is unfused
        out = flex_forward(q, k, v, workload_block_mask(w), flex_fn(w.device))
    ref = dense_prefixlm_attention(q, k, v, w.batch.prefix_lens, w.batch.causal_lens)
    assert (out.double() - ref).abs().max() < 1e-5
    assert torch.count_nonzero(out[w.meta.total:]) == 0


def test_flex_refuses_on_cpu_because_it_has_no_backward_there():
    with pytest.raises(PeerUnsupported, match="flex_attention: .*no FlexAttention backward on cpu"):
        PEERS["flex_attention"].prepare(tiny(), "reference")


def test_sdpa_dense_refuses_a_huge_token_budget_clearly():
    w = build_workload(Config("sft_long_prompt", 65536, 1, 8, "float32", context=128), "cpu")
    with pytest.raises(PeerUnsupported, match=r"sdpa_dense: dense \[T,T\] mask for T=65536 needs [\d.]+ GiB"):
        PEERS["sdpa_dense"].prepare(w, "reference")


def test_large_workload_is_checked_on_a_sub_batch_of_its_own_rows(monkeypatch):
    monkeypatch.setattr(peers_check, "CHECK_TOKENS", 128)
    w = tiny()
    small = peers_check.sub_workload(w)
    assert small.shape.tokens == 128 + peers_check.CHECK_PADDING and small.meta.total <= 128
    n = small.batch.prefix_lens[0] + small.batch.causal_lens[0]
    assert torch.equal(small.q[:n], w.q.detach()[:n])
    check = check_peer("fa3_causal_bound", w, "reference")
    assert check["ok"] and check["checked_tokens"] == small.meta.total


def test_a_wrong_peer_is_refused_before_timing():
    wrong = peers_check.checked("test_wrong", prepare_bidir_bound, CAUSAL)
    with pytest.raises(PeerCheckFailed, match="test_wrong: disagrees with the dense causal reference"):
        wrong(tiny(), "reference")


def test_sweep_writes_peer_records(tmp_path):
    from cli import app
    out = tmp_path / "sweep"
    args = ["sweep", "--backend", "reference", "--device", "cpu", "--peer", "fa3_causal_bound", "--peer",
            "sdpa_dense", "--variant", "prefix_rows_add", "--tokens", "256", "--heads", "2", "--head-dim", "32",
            "--dtype", "float32", "--distribution", "sft_long_prompt", "--context", "128", "--min-reps", "3",
            "--max-reps", "5", "--time-cap", "1", "--out", str(out), "--no-progress", "--isolation", "none"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    records = {r["variant"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert records["prefix_rows_add"]["kind"] == "variant"
    for name in ("fa3_causal_bound", "sdpa_dense"):
        rec = records[name]
        assert rec["kind"] == "peer" and rec["status"] == "ok", rec.get("error")
        assert rec["notes"]["check"]["ok"] and rec["notes"]["attended_pairs"] > 0
        assert rec["timings_ms"]["forward"]["n"] >= 3 and rec["setup_ms"] is not None


@pytest.mark.gpu
@pytest.mark.parametrize("tokens", [2048, 8192])          # 8192 > CHECK_TOKENS: the sub-batch path
@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize("name", sorted(PEERS))
def test_gpu_peer_matches_its_dense_reference(name, distribution, tokens):
    from prefixlm_attn.backends import get_backend
    if name.startswith("fa3_") and not get_backend("fa3").available():
        pytest.skip("FA3 not importable")
    config = Config(distribution=distribution, tokens=tokens, heads=4, head_dim=128, dtype="bfloat16")
    w = build_workload(config, "cuda")
    prepared = PEERS[name].prepare(w, "fa3")
    check = prepared.notes["check"]
    assert check["ok"], check
    out = prepared.forward()
    out.backward(w.dout)
    torch.cuda.synchronize()
    for t in (out, w.q.grad, w.k.grad, w.v.grad):
        assert torch.count_nonzero(t[w.meta.total:]) == 0 and torch.isfinite(t).all()
    assert prepared.setup_ms is not None and prepared.notes["attended_pairs"] > 0
