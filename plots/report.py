"""Build the report (report.md, report.html, figures/) from result directories; no timing is recomputed."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from plots import figure_data as fd
from plots.figures import render_all
from plots.overhead import host_overhead_blocks
from bench.records import Record
from bench.stats import Stat
from plots.records import RunData, by_config, config_sort_key, load_dirs
from plots.render import Block, fmt_num, to_html, to_markdown

MIB = 1024 * 1024


def _interval(s: Stat | None) -> str:
    if not s:
        return "-"
    return f"{s.median:.4g} [{s.lo:.4g}, {s.hi:.4g}]"


def _mib(value: Any) -> str:
    return "-" if value is None else f"{value / MIB:.2f}"


def _last_line(text: Any, limit: int = 200, tail: bool = False) -> str:
    """The exception line of a traceback (its last non-empty line), shortened; "" for no error.

    tail keeps the end of a long line (where a peer's exception says what went wrong) instead of its start.
    """
    lines = [line.strip() for line in ("" if text is None else str(text)).splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return last[-limit:] if tail else last[:limit]


THROTTLE_BITS = {0x4: "software power cap", 0x8: "hardware slowdown", 0x20: "software thermal slowdown",
                 0x40: "hardware thermal slowdown", 0x80: "power brake"}


def throttle_notes(records: list[Record]) -> list[str]:
    """Configurations whose GPU reported a clock-throttle reason right after being timed (nvidia-smi)."""
    out = []
    for r in records:
        raw = (r.gpu_clocks or {}).get("nvsmi.clocks_throttle_reasons.active")
        try:
            bits = int(raw, 16)
        except (TypeError, ValueError):
            continue
        reasons = [name for bit, name in THROTTLE_BITS.items() if bits & bit]
        if reasons and r.variant == (r.prediction or {}).get("best_variant", r.variant):
            out.append(f"{r.config_id}: GPU clocks throttled after timing ({', '.join(reasons)}; "
                       f"SM {r.gpu_clocks.get('nvsmi.clocks.sm')} MHz)")
    return out


def notes_for(data: RunData) -> list[str]:
    """Facts a reader needs before trusting the figures."""
    notes = []
    backends = {r.backend for r in data.records}
    if "reference" in backends:
        notes.append("CPU reference backend in these records: timings are not GPU figures (use fa3 on a GPU).")
    failed = [r for r in data.records if r.status != "ok"]
    for r in failed:
        notes.append(f"{r.config_id} / {r.variant}: {r.status}"
                     + (f" ({_last_line(r.error)})" if r.error else ""))
    notes += throttle_notes(data.records)
    if data.skipped_duplicates:
        dirs = sorted({str(d) for *_, d in data.skipped_duplicates})
        notes.append(f"{len(data.skipped_duplicates)} records of {', '.join(dirs)} skipped: the same configuration "
                     "and implementation comes from a directory named earlier.")
    if not data.env:
        notes.append("no env.json: environment unknown.")
    if not data.validation:
        notes.append("no validation.jsonl: run `prefixbench validate` for the boundary matrix.")
    return notes


def env_blocks(data: RunData) -> list[Block]:
    if not data.env:
        return []
    keys = list(dict.fromkeys(k for env in data.env for k in env))
    headers = ["key"] + [f"run {i + 1}" for i in range(len(data.env))] if len(data.env) > 1 else ["key", "value"]
    rows = [[k] + [str(env.get(k, "-")) for env in data.env] for k in keys]
    return [("h", 2, "Environment"), ("table", headers, rows)]


SUMMARY_HEADERS = ["implementation", "status", "forward ms [lo, hi]", "backward ms [lo, hi]", "reps (stop)",
                   "allocated MiB", "zero-filled MiB", "peak MiB", "predicted extra ms", "measured extra ms"]


def summary_row(rec: Record) -> list[str]:
    b, p = rec.bytes or {}, rec.prediction or {}
    name = rec.variant + (" (peer)" if rec.kind == "peer" else "")
    return [name, rec.status, _interval(rec.stat("forward")), _interval(rec.stat("backward")),
            f"{rec.repetitions} ({rec.stop_reason})", _mib(b.get("allocated")),
            _mib(b.get("zero_filled")), _mib(b.get("peak_memory")),
            fmt_num(p.get("extra_ms_vs_best_predicted")), fmt_num(p.get("extra_ms_vs_best_measured"))]


def summary_blocks(data: RunData) -> list[Block]:
    blocks: list[Block] = [("h", 2, "Summary per configuration")]
    groups = sorted(by_config(data.records).values(), key=lambda g: config_sort_key(g[0]))
    for group in groups:
        r0 = group[0]
        best = fd.best_variant(group)
        blocks.append(("h", 3, r0.config_id))
        blocks.append(("p", f"distribution {r0.distribution}, {r0.tokens} tokens, {r0.heads} "
                            f"heads x {r0.head_dim}, {r0.dtype}, backend {r0.backend}, "
                            f"device {r0.device}; best variant: {best.variant if best else '-'}"))
        blocks.append(("table", SUMMARY_HEADERS, [summary_row(r) for r in group]))
    return blocks


def validation_blocks(data: RunData) -> list[Block]:
    m = fd.boundary_matrix(data.validation)
    if not m["cells"]:
        return []
    rows = []  # patterns as rows: there are many more patterns than variants
    for p in m["patterns"]:
        row = [p]
        for v in m["variants"]:
            cell = m["cells"].get((v, p))
            row.append("-" if cell is None else cell["outcome"] + (" (expected)" if cell["expected_to_fail"] else ""))
        rows.append(row)
    return [("h", 2, "Boundary validation"), ("table", ["pattern"] + m["variants"], rows)]


def peers_blocks(data: RunData) -> list[Block]:
    rows = []
    for cfg in fd.peers(data.records):
        for i in cfg["implementations"]:
            rows.append([cfg["config_id"], i["name"], i["kind"], fmt_num(i["forward_ms"]), fmt_num(i["backward_ms"]),
                         fmt_num(i["forward_tflops"], ".1f"), fmt_num(i["backward_tflops"], ".1f"),
                         fmt_num(i["forward_tflops_own"], ".1f"), fmt_num(i["backward_tflops_own"], ".1f"),
                         fmt_num(i["setup_ms"])])
    if not rows:
        return []
    headers = ["config", "implementation", "kind", "forward ms", "backward ms", "fwd TFLOP/s (PrefixLM pairs)",
               "bwd TFLOP/s (PrefixLM pairs)", "fwd TFLOP/s (own pairs)", "bwd TFLOP/s (own pairs)", "setup ms"]
    failed = [[r.config_id, r.variant, r.status, _last_line(r.error, tail=True)]
              for r in data.records if r.kind == "peer" and r.status != "ok"]
    blocks: list[Block] = [("h", 2, "Peers"),
                           ("p", "TFLOP/s count 4 (forward) or 10 (backward) FLOPs per attended (query, key) pair "
                                 "per head-dim element. 'PrefixLM pairs' uses the workload's PrefixLM count for "
                                 "every implementation (time to do this job); 'own pairs' uses what the "
                                 "implementation computes (the causal bound does less, the bidirectional bound more)."),
                           ("table", headers, rows)]
    if failed:
        blocks += [("p", "Peers that did not run:"), ("table", ["config", "implementation", "status", "why"], failed)]
    return blocks


def _short_kernel(name: str) -> str:
    """'void at::native::vectorized_elementwise_kernel<...FillFunctor...>(...)' -> a readable stem."""
    stem = name.split("<")[0].split("(")[0].replace("void ", "").split("::")[-1]
    for tag in ("FillFunctor", "AddFunctor", "CUDAFunctor_add"):
        if tag in name:
            return f"{stem}[{tag}]"
    return stem


def breakdown_blocks(data: RunData) -> list[Block]:
    blocks: list[Block] = []
    for bd in data.breakdown:
        rows = []
        for variant, v in (bd.get("variants") or {}).items():
            for rng, info in (v.get("ranges") or {}).items():
                counts = {name: k.get("count", 0) for name, k in (info.get("kernels") or {}).items()}
                kernels = sorted(counts.items(), key=lambda kv: -kv[1])
                ktext = ", ".join(f"{_short_kernel(k)} x{n:g}" for k, n in kernels[:4]) + (
                    " ..." if len(kernels) > 4 else "")
                rows.append([variant, rng, fmt_num(info.get("gpu_ms")), ktext or "-"])
        if rows:
            blocks += [("h", 2, f"Profile breakdown ({bd.get('tool', 'unknown tool')})"),
                       ("table", ["variant", "range", "GPU ms", "kernels (launches)"], rows)]
    return blocks


def build_report(dirs: list[str | Path], out: str | Path) -> dict[str, Path]:
    """Write OUT/report.md, OUT/report.html and OUT/figures/*; return their paths."""
    data = load_dirs(list(dirs))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures, fig_notes = render_all(data, out / "figures")
    blocks: list[Block] = [("h", 1, "prefixbench report"),
                           ("p", "Sources: " + ", ".join(str(s) for s in data.sources)),
                           ("h", 2, "Notes"), ("ul", notes_for(data) + fig_notes or ["none"])]
    blocks += env_blocks(data) + summary_blocks(data) + host_overhead_blocks(data.records)
    if figures:
        blocks.append(("h", 2, "Figures"))
        for f in figures:
            blocks += [("h", 3, f["title"]), ("img", f["title"], f["png"], f["svg"])]
    blocks += validation_blocks(data) + peers_blocks(data) + breakdown_blocks(data)
    md, html_path = out / "report.md", out / "report.html"
    md.write_text(to_markdown(blocks, out))
    html_path.write_text(to_html(blocks, "prefixbench report"))
    return {"markdown": md, "html": html_path, "figures": out / "figures"}
