"""FA4's facts on a Hopper GPU, straight through flash_attn.cute.interface (no prefixbench code in the way):
its signatures, first-call compile seconds, the rows each varlen pass writes (NaN-poisoned buffers) and its
error against a float64 dense reference, what an empty causal pass (max_seqlen_q = 0, or seqused_q all 0)
does forward and backward and whether the CUDA context survives it, and the PrefixLM mask_mod with and
without block sparsity on one packed sequence, forward and backward.

    python scripts/gpu/fa4_facts.py OUTDIR            every section, each in its own process
    python scripts/gpu/fa4_facts.py OUTDIR SECTION    one of: sig varlen empty_fwd empty_bwd empty_bwd_used0 mask

Each section writes OUTDIR/SECTION.json; docs/FA4_FACTS.md says what each answers and which code depends on it.
"""
import inspect, json, math, os, subprocess, sys, time, traceback

SECTIONS = ("sig", "varlen", "empty_fwd", "empty_bwd", "empty_bwd_used0", "mask")
if len(sys.argv) == 2:
    for name in SECTIONS:
        print(f"== {name}", flush=True)
        subprocess.run([sys.executable, __file__, sys.argv[1], name], timeout=600, check=False)
    sys.exit(0)
if len(sys.argv) != 3 or sys.argv[2] not in SECTIONS:
    sys.exit(f"usage: {sys.argv[0]} OUTDIR [{'|'.join(SECTIONS)}]")
OUT, SECTION = sys.argv[1], sys.argv[2]
import torch  # noqa: E402

res = {"section": SECTION}
dev = "cuda"
H, D = 2, 128
dt = torch.bfloat16
g = torch.Generator().manual_seed(0)


def rnd(n):
    return torch.randn(n, H, D, generator=g).to(dev, dt)


def nanlike(t):
    return torch.full_like(t, float("nan"))


def rows_written(t, n):
    return [i for i in range(n) if not torch.isnan(t[i].float()).any().item()]


def ranges(rows):
    out, start, prev = [], None, None
    for r in rows:
        if start is None:
            start = prev = r
        elif r == prev + 1:
            prev = r
        else:
            out.append([start, prev + 1]); start = prev = r
    if start is not None:
        out.append([start, prev + 1])
    return out


def ref_attn(q, k, v, dout, mask):
    """float64 dense attention over [T, H, D] with mask [T, T] (True = visible); rows without keys -> 0."""
    q, k, v, dout = (t.detach().double().cpu().requires_grad_(True) for t in (q, k, v, dout))
    s = torch.einsum("qhd,khd->hqk", q, k) * D ** -0.5
    s = s.masked_fill(~mask.cpu()[None], float("-inf"))
    p = torch.softmax(s, -1).nan_to_num(0.0)
    o = torch.einsum("hqk,khd->qhd", p, v)
    o.backward(dout.detach())
    return o.detach(), q.grad, k.grad, v.grad


def relerr(a, b, rows=None):
    a, b = a.double().cpu(), b.double().cpu()
    if rows is not None:
        a, b = a[rows], b[rows]
    return ((a - b).norm() / b.norm().clamp_min(1e-6)).item()


def cache_sizes(iface):
    return {n: len(getattr(iface, n).compile_cache.cache) for n in ("_flash_attn_fwd", "_flash_attn_bwd")
            if hasattr(getattr(iface, n, None), "compile_cache") and hasattr(getattr(iface, n).compile_cache, "cache")}


def alive():
    try:
        x = torch.ones(64, 64, device=dev); y = (x @ x).sum().item(); torch.cuda.synchronize()
        return y == 64 * 64 * 64
    except Exception as exc:
        return f"dead: {exc}"[:300]


try:
    t0 = time.perf_counter()
    import flash_attn.cute.interface as iface
    res["import_s"] = time.perf_counter() - t0
    res["device"] = torch.cuda.get_device_name()
    from importlib.metadata import version
    res["versions"] = {p: version(p) for p in ("flash-attn-4", "nvidia-cutlass-dsl", "quack-kernels")}
    res["torch"] = torch.__version__

    if SECTION == "sig":
        res["fwd"] = list(inspect.signature(iface._flash_attn_fwd).parameters)
        res["bwd"] = list(inspect.signature(iface._flash_attn_bwd).parameters)

    if SECTION == "varlen":
        prefix, causal = [100, 64, 0, 50], [30, 0, 40, 20]
        lens = [p + c for p, c in zip(prefix, causal)]
        total = sum(lens); T = total + 16
        cu = torch.tensor([0] + list(torch.tensor(lens).cumsum(0)), dtype=torch.int32, device=dev)
        pl = torch.tensor(prefix, dtype=torch.int32, device=dev)
        cl = torch.tensor(causal, dtype=torch.int32, device=dev)
        q, k, v, dout = rnd(T), rnd(T), rnd(T), rnd(T)
        passes = {
            "bidir": dict(cu_seqlens_q=cu, cu_seqlens_k=cu, seqused_q=pl, seqused_k=pl, max_seqlen_q=max(prefix),
                          max_seqlen_k=max(prefix), causal=False),
            "causal": dict(cu_seqlens_q=(cu + torch.cat([pl, pl[:1] * 0])).to(torch.int32).contiguous(),
                           cu_seqlens_k=cu,
                           seqused_q=cl, seqused_k=None, max_seqlen_q=max(causal), max_seqlen_k=max(lens), causal=True),
        }
        # per-pass dense masks (query row -> key row), absolute positions
        starts = cu.tolist()
        for name, kw in passes.items():
            mask = torch.zeros(T, T, dtype=torch.bool)
            qrows = []
            for b, (p, c) in enumerate(zip(prefix, causal)):
                s0 = starts[b]
                if name == "bidir":
                    mask[s0:s0 + p, s0:s0 + p] = True; qrows += list(range(s0, s0 + p))
                else:
                    for i in range(c):
                        mask[s0 + p + i, s0:s0 + p + i + 1] = True
                    qrows += list(range(s0 + p, s0 + p + c))
            out, dq, dk, dv = nanlike(q), nanlike(q), nanlike(k), nanlike(v)
            lse = torch.full((H, T), float("nan"), device=dev)
            times = []
            for rep in range(2):
                torch.cuda.synchronize(); t0 = time.perf_counter()
                iface._flash_attn_fwd(q=q, k=k, v=v, out=out, lse=lse, return_lse=True, softmax_scale=D ** -0.5, **kw)
                torch.cuda.synchronize(); t1 = time.perf_counter()
                iface._flash_attn_bwd(q=q, k=k, v=v, out=out, dout=dout, lse=lse, softmax_scale=D ** -0.5,
                                      dq=dq, dk=dk, dv=dv, deterministic=False, **kw)
                torch.cuda.synchronize(); t2 = time.perf_counter()
                times.append({"fwd_s": t1 - t0, "bwd_s": t2 - t1, "cache": cache_sizes(iface)})
                if rep == 0:
                    w = {"out": ranges(rows_written(out, T)), "dq": ranges(rows_written(dq, T)),
                         "dk": ranges(rows_written(dk, T)), "dv": ranges(rows_written(dv, T))}
                    ro, rdq, rdk, rdv = ref_attn(q, k, v, dout, mask)
                    keyrows = sorted(set(mask.nonzero()[:, 1].tolist()))
                    err = {"out": relerr(out, ro, qrows), "dq": relerr(dq, rdq, qrows),
                           "dk": relerr(dk.nan_to_num(0), rdk, keyrows), "dv": relerr(dv.nan_to_num(0), rdv, keyrows)}
                    zero_rows = {n: [r for r in rows_written(t, T) if t[r].float().abs().max().item() == 0]
                                 for n, t in (("dq", dq), ("dk", dk), ("dv", dv), ("out", out))}
            res[name] = {"rows_written": w, "zero_rows_written": {n: ranges(z) for n, z in zero_rows.items()},
                         "relerr_vs_float64": err, "times": times, "cu": starts, "T": T}
        # a second shape: does it recompile?
        q2 = rnd(T + 64)
        cache_before = cache_sizes(iface)
        iface._flash_attn_fwd(q=q2, k=q2, v=q2, cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=max(lens) + 7,
                              max_seqlen_k=max(lens) + 7, causal=True, softmax_scale=D ** -0.5, return_lse=True)
        torch.cuda.synchronize()
        res["second_shape_cache"] = {"before": cache_before, "after": cache_sizes(iface)}

    if SECTION.startswith("empty"):
        lens = [80, 48]; T = 144
        cu = torch.tensor([0, 80, 128], dtype=torch.int32, device=dev)
        z = torch.zeros(2, dtype=torch.int32, device=dev)
        q, k, v, dout = rnd(T), rnd(T), rnd(T), rnd(T)
        maxq = 0 if SECTION != "empty_bwd_used0" else 80
        # the causal pass of a batch without responses: queries start at each sequence's end (cu + lens)
        kw = dict(cu_seqlens_q=torch.tensor([80, 128, 128], dtype=torch.int32, device=dev), cu_seqlens_k=cu,
                  seqused_q=z, seqused_k=None, max_seqlen_q=maxq, max_seqlen_k=80, causal=True)
        out, dq, dk, dv = nanlike(q), nanlike(q), nanlike(k), nanlike(v)
        lse = torch.full((H, T), float("nan"), device=dev)
        for step in ("fwd", "bwd"):
            if SECTION == "empty_fwd" and step == "bwd":
                break
            try:
                torch.cuda.synchronize(); t0 = time.perf_counter()
                if step == "fwd":
                    iface._flash_attn_fwd(q=q, k=k, v=v, out=out, lse=lse, return_lse=True,
                                          softmax_scale=D ** -0.5, **kw)
                else:
                    lse2 = torch.zeros(H, T, device=dev)
                    iface._flash_attn_bwd(q=q, k=k, v=v, out=torch.zeros_like(q), dout=dout, lse=lse2,
                                          softmax_scale=D ** -0.5, dq=dq, dk=dk, dv=dv, deterministic=False, **kw)
                torch.cuda.synchronize()
                res[step] = {"status": "returned", "s": time.perf_counter() - t0}
            except Exception as exc:
                res[step] = {"status": "raised", "error": f"{type(exc).__name__}: {exc}"[:600]}
            res[step]["alive_after"] = alive()
        try:
            res["rows_written"] = {n: ranges(rows_written(t, T))
                                   for n, t in (("out", out), ("dq", dq), ("dk", dk), ("dv", dv))}
            res["lse_rows_written"] = ranges([i for i in range(T) if not torch.isnan(lse[0, i]).item()])
        except Exception as exc:
            res["rows_error"] = str(exc)[:300]

    if SECTION == "mask":
        from flash_attn.cute.block_sparsity import BlockSparseTensorsTorch

        from prefixlm_attn.backends.fa4_mask_mods import packed_prefixlm, varlen_prefixlm

        prefix, causal = [300, 40, 0, 200, 90], [100, 250, 60, 0, 160]
        lens = [p + c for p, c in zip(prefix, causal)]; total = sum(lens); T = total
        starts = [0] + list(torch.tensor(lens).cumsum(0).tolist())
        doc = torch.empty(T, dtype=torch.int32); pend = torch.empty(T, dtype=torch.int32)
        mask = torch.zeros(T, T, dtype=torch.bool)
        for b, (p, c) in enumerate(zip(prefix, causal)):
            s0, s1 = starts[b], starts[b + 1]
            doc[s0:s1] = b; pend[s0:s1] = s0 + p
            for i in range(s0, s1):
                mask[i, s0:max(s0 + p, i + 1)] = True
        doc_g, pend_g = doc.to(dev), pend.to(dev)
        q, k, v, dout = rnd(T), rnd(T), rnd(T), rnd(T)
        ro, rdq, rdk, rdv = ref_attn(q, k, v, dout, mask)
        B = 128
        Mb = Nb = math.ceil(T / B)
        # block classes from the per-query visible interval [lo, hi)
        pos = torch.arange(T, device=dev)
        lo = torch.tensor([starts[d] for d in doc.tolist()], device=dev)
        hi = torch.maximum(pend_g.long(), pos + 1)
        padT = Mb * B
        lo_p = torch.cat([lo, torch.full((padT - T,), 1 << 30, device=dev)]).view(Mb, B)
        hi_p = torch.cat([hi, torch.full((padT - T,), -1, device=dev)]).view(Mb, B)
        c0 = torch.arange(Nb, device=dev) * B; c1 = torch.clamp(c0 + B, max=T)
        anyv = ((lo_p[:, :, None] < c1[None, None]) & (hi_p[:, :, None] > c0[None, None])).any(1)
        validq = (torch.arange(padT, device=dev) < T).view(Mb, B)
        lo_f = torch.where(validq, lo_p, torch.full_like(lo_p, -1))
        hi_f = torch.where(validq, hi_p, torch.full_like(hi_p, 1 << 30))
        full = (lo_f.max(1).values[:, None] <= c0[None]) & (hi_f.min(1).values[:, None] >= c1[None])
        partial = anyv & ~full
        # dense check of the classes
        dm = torch.zeros(padT, padT, dtype=torch.bool); dm[:T, :T] = mask
        blk = dm.view(Mb, B, Nb, B).permute(0, 2, 1, 3)
        real = torch.zeros(padT, padT, dtype=torch.bool); real[:T, :T] = True
        rb = real.view(Mb, B, Nb, B).permute(0, 2, 1, 3)
        dense_any = blk.any(-1).any(-1); dense_full = (blk | ~rb).all(-1).all(-1) & dense_any
        res["class_check"] = {"any_ok": bool((dense_any == anyv.cpu()).all()),
                              "full_ok": bool((dense_full == full.cpu()).all()), "Mb": Mb, "full": int(full.sum()),
                              "partial": int(partial.sum()), "empty": int((~anyv).sum())}

        def packed(cls_rows):  # [R, C] bool -> cnt [1,H,R], idx [1,H,R,C] (true columns first, ascending)
            cnt = cls_rows.sum(-1).to(torch.int32)
            order = torch.sort((~cls_rows).to(torch.int8), dim=-1, stable=True).indices.to(torch.int32)
            return (cnt[None, None].expand(1, H, -1).contiguous(), order[None, None].expand(1, H, -1, -1).contiguous())

        mcnt, midx = packed(partial); fcnt, fidx = packed(full)
        fwd_bs = BlockSparseTensorsTorch(mask_block_cnt=mcnt, mask_block_idx=midx, full_block_cnt=fcnt,
                                         full_block_idx=fidx, block_size=(B, B))
        mcnt_t, midx_t = packed(partial.t().contiguous()); fcnt_t, fidx_t = packed(full.t().contiguous())
        bwd_bs = BlockSparseTensorsTorch(mask_block_cnt=mcnt_t, mask_block_idx=midx_t, full_block_cnt=fcnt_t,
                                         full_block_idx=fidx_t, block_size=(B, B))
        qrows = list(range(T))
        forms = {
            "packed_sparse": dict(mask_mod=packed_prefixlm, aux_tensors=[doc_g, pend_g], bs=(fwd_bs, bwd_bs)),
            "packed_dense": dict(mask_mod=packed_prefixlm, aux_tensors=[doc_g, pend_g], bs=(None, None)),
            "varlen_masked": dict(mask_mod=varlen_prefixlm,
                                  aux_tensors=[torch.tensor(prefix, dtype=torch.int32, device=dev)],
                                  bs=(None, None), varlen=True),
        }
        cu = torch.tensor(starts, dtype=torch.int32, device=dev)
        for name, f in forms.items():
            r = {}
            try:
                out, dq, dk, dv = nanlike(q), nanlike(q), nanlike(k), nanlike(v)
                if f.get("varlen"):
                    qq, kk, vv, oo, do_, dqq, dkk, dvv = q, k, v, out, dout, dq, dk, dv
                    lse = torch.full((H, T), float("nan"), device=dev)
                    extra = dict(cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=max(lens), max_seqlen_k=max(lens))
                else:
                    qq, kk, vv, oo, do_, dqq, dkk, dvv = (t.unsqueeze(0) for t in (q, k, v, out, dout, dq, dk, dv))
                    lse = torch.full((1, H, T), float("nan"), device=dev)
                    extra = {}
                for rep in range(2):
                    torch.cuda.synchronize(); t0 = time.perf_counter()
                    iface._flash_attn_fwd(q=qq, k=kk, v=vv, out=oo, lse=lse, return_lse=True, softmax_scale=D ** -0.5,
                                          causal=False, mask_mod=f["mask_mod"], aux_tensors=f["aux_tensors"],
                                          block_sparse_tensors=f["bs"][0], **extra)
                    torch.cuda.synchronize(); t1 = time.perf_counter()
                    r.setdefault("fwd_s", []).append(t1 - t0)
                    if rep == 0:
                        r["out_err"] = relerr(out, ro, qrows); r["out_rows"] = ranges(rows_written(out, T))
                    try:
                        iface._flash_attn_bwd(q=qq, k=kk, v=vv, out=oo, dout=do_, lse=lse, softmax_scale=D ** -0.5,
                                              causal=False, dq=dqq, dk=dkk, dv=dvv, deterministic=False,
                                              mask_mod=f["mask_mod"], aux_tensors=f["aux_tensors"],
                                              block_sparse_tensors=f["bs"][1], **extra)
                        torch.cuda.synchronize(); r.setdefault("bwd_s", []).append(time.perf_counter() - t1)
                        if rep == 0:
                            r["dq_err"], r["dk_err"], r["dv_err"] = relerr(dq, rdq), relerr(dk, rdk), relerr(dv, rdv)
                            r["dk_rows"] = ranges(rows_written(dk, T))
                    except Exception as exc:
                        r["bwd_error"] = f"{type(exc).__name__}: {exc}"[:500]; break
                r["cache"] = cache_sizes(iface)
            except Exception as exc:
                r["error"] = f"{type(exc).__name__}: {exc}"[:800]; r["tb"] = traceback.format_exc()[-1500:]
            res[name] = r
        # varlen backward with block sparsity: expected to refuse
        try:
            iface._flash_attn_bwd(q=q, k=k, v=v, out=q, dout=dout, lse=torch.zeros(H, T, device=dev), cu_seqlens_q=cu,
                                  cu_seqlens_k=cu, max_seqlen_q=max(lens), max_seqlen_k=max(lens),
                                  mask_mod=varlen_prefixlm, aux_tensors=forms["varlen_masked"]["aux_tensors"],
                                  block_sparse_tensors=bwd_bs)
            res["varlen_bwd_sparse"] = "ran"
        except Exception as exc:
            res["varlen_bwd_sparse"] = f"{type(exc).__name__}: {exc}"[:300]
except Exception as exc:
    res["error"] = f"{type(exc).__name__}: {exc}"[:1000]
    res["tb"] = traceback.format_exc()[-3000:]
os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, f"{SECTION}.json"), "w") as fh:
    json.dump(res, fh, indent=1, default=str)
print(json.dumps({k: v for k, v in res.items() if k != "tb"}, default=str)[:3000])
