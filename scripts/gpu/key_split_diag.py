"""Key split on FA3 against the reference backend, pass by pass, for one batch.

Prints, per head dim: pass A and pass B (out on the rows each writes, lse) FA3 vs the reference
backend, each with candidate keyword changes; the Triton merge vs its torch fallback on FA3's
partial results; the op's out vs the dense float64 reference right after the forward and again
after the backward. Usage (repository root, FA3 on PYTHONPATH):
    PYTHONPATH=$PWD python scripts/gpu/key_split_diag.py [prefix,..] [causal,..]
"""
from __future__ import annotations

import sys

import torch

from prefixlm_attn import build_batch_metadata, prefixlm_attention
from prefixlm_attn.dense_reference import dense_prefixlm_attention
from prefixlm_attn.key_split import prefix_keys_kwargs, response_keys_kwargs
from prefixlm_attn.passes import PassPlan
from prefixlm_attn.response_rows import merge_response_rows_


DEV = "cuda" if torch.cuda.is_available() else "cpu"
FA3 = "fa3" if DEV == "cuda" else "reference"


def sync():
    if DEV == "cuda":
        torch.cuda.synchronize()


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def rows_of(kw, n):
    cu = kw["cu_seqlens_q"].tolist()
    used = kw["seqused_q"].tolist() if kw["seqused_q"] is not None else [cu[i + 1] - cu[i] for i in range(n)]
    return [(cu[i], used[i]) for i in range(n)]


def compare(name, kw_fa3, kw_ref, q, k, v, n):
    outs = {}
    for tag, be, kw in (("fa3", FA3, kw_fa3), ("ref", "reference", kw_ref)):
        plan_be = PassPlan.from_op_args(be, *META.op_args(), False, SCALE)
        out = torch.zeros_like(q)
        lse = plan_be.backend.forward(q, k, v, out, **kw)
        outs[tag] = (out, lse)
    sync()
    (of, lf), (orf, lr) = outs["fa3"], outs["ref"]
    parts = []
    worst = (0.0, None)
    for b, (s, L) in enumerate(rows_of(kw_ref, n)):
        e = rel(of[s:s + L], orf[s:s + L])
        le = (lf[:, s:s + L] - lr[:, s:s + L]).abs().max().item() if L else 0.0
        parts.append(f"seq{b}[{s}:{s + L}] out {e:.2e} lse {le:.2e}")
        # first bad row of this sequence
        r = ((of[s:s + L].float() - orf[s:s + L].float()).flatten(1).norm(dim=1)
             / orf[s:s + L].float().flatten(1).norm(dim=1).clamp_min(1e-6))
        if L and r.max().item() > worst[0]:
            bad = (r > 2e-2).nonzero().squeeze(1).tolist()
            worst = (r.max().item(), f"seq{b} rows bad {len(bad)}/{L} first {bad[:3]} last {bad[-3:]}")
    print(f"  {name}: " + "; ".join(parts) + f"; worst row {worst[0]:.2e} {worst[1] or ''}", flush=True)
    return outs


def main():
    global META, SCALE
    prefix = [int(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "32,64,16").split(",")]
    causal = [int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "900,1200,700").split(",")]
    budget = sum(prefix) + sum(causal) + 64
    n = len(prefix)
    print(f"batch prefix {prefix} causal {causal} budget {budget}; {torch.cuda.get_device_name() if DEV == 'cuda' else 'cpu (reference stands in for fa3)'}", flush=True)
    for head_dim in (64, 128):
        SCALE = head_dim ** -0.5
        g = torch.Generator(device="cpu").manual_seed(0)
        q, k, v, dout = (torch.randn(budget, 4, head_dim, generator=g).to(DEV, torch.bfloat16) for _ in range(4))
        META = build_batch_metadata(prefix, causal, budget, device=DEV)
        plan = PassPlan.from_op_args(FA3, *META.op_args(), False, SCALE)
        total_lens = (plan.cu_seqlens[1:] - plan.cu_seqlens[:-1]).to(torch.int32).contiguous()
        print(f"head_dim {head_dim}: max_prefix {plan.max_prefix} max_causal {plan.max_causal} "
              f"max_total {plan.max_total}", flush=True)
        a = prefix_keys_kwargs(plan)
        cands = {
            "A as shipped": a,
            "A max_seqlen_k=max_total": {**a, "max_seqlen_k": plan.max_total},
            "A seqused_q=total_lens": {**a, "seqused_q": total_lens},
        }
        res = {}
        for name, kw in cands.items():
            res[name] = compare(name, kw, a, q, k, v, n)
        b = response_keys_kwargs(plan)
        resb = compare("B as shipped", b, b, q, k, v, n)
        compare("B max_seqlen_q/k=max_total", {**b, "max_seqlen_q": plan.max_total, "max_seqlen_k": plan.max_total},
                b, q, k, v, n)
        # merge: Triton on FA3's partials vs torch fallback (CPU) on the same partials, and vs dense
        ref = dense_prefixlm_attention(q.cpu().double(), k.cpu().double(), v.cpu().double(), prefix, causal)
        ref = ref[0] if isinstance(ref, tuple) else ref
        total = META.total
        for name in res:
            out_a, lse_a = (t.clone() for t in res[name]["fa3"])
            out_b, lse_b = resb["fa3"]
            o_cpu, l_cpu = out_a.cpu().clone(), lse_a.cpu().clone()
            lse_a = merge_response_rows_(out_a, lse_a, out_b, lse_b, plan.row_is_prefix, total)
            l_cpu = merge_response_rows_(o_cpu, l_cpu, out_b.cpu(), lse_b.cpu(), plan.row_is_prefix.cpu(), total)
            sync()
            print(f"  merge({name}): triton vs torch out {rel(out_a.cpu()[:total], o_cpu[:total]):.2e} "
                  f"lse {(lse_a.cpu()[:, :total] - l_cpu[:, :total]).abs().max().item():.2e}; "
                  f"merged vs dense {rel(out_a.cpu()[:total], ref[:total]):.2e}", flush=True)
        # reference partials merged: isolates FA3 from the merge
        o_r, l_r = (t.clone() for t in res["A as shipped"]["ref"])
        l_r = merge_response_rows_(o_r, l_r, resb["ref"][0], resb["ref"][1], plan.row_is_prefix, total)
        print(f"  merge(reference partials) vs dense {rel(o_r.cpu()[:total], ref[:total]):.2e}", flush=True)
        # the op, out before and after the backward
        qq, kk, vv = (t.clone().requires_grad_(True) for t in (q, k, v))
        out = prefixlm_attention(qq, kk, vv, META, variant="key_split", backend=FA3)
        sync()
        before = out.detach().clone()
        out.backward(dout)
        sync()
        print(f"  op key_split: out vs dense after fwd {rel(before.cpu()[:total], ref[:total]):.2e}, "
              f"after bwd {rel(out.detach().cpu()[:total], ref[:total]):.2e}, "
              f"out changed by bwd: {not torch.equal(before, out.detach())}", flush=True)
        out2 = prefixlm_attention(q, k, v, META, variant="prefix_rows_add", backend=FA3)
        print(f"  op prefix_rows_add: out vs dense {rel(out2.cpu()[:total], ref[:total]):.2e}", flush=True)


if __name__ == "__main__":
    main()
