"""Build the report (report.md, report.html, figures/) from result directories; no timing is recomputed."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

from plots import figure_data as fd
from plots.backends import backend_blocks
from plots.figures import render_all
from plots.overhead import host_overhead_blocks
from bench.spec.errors import UserError
from bench.results.io import make_out_dir
from bench.results.derived import fill_ideal
from bench.results.records import Record
from bench.results.stats import Stat
from plots.records import RunData, by_config, config_sort_key, load_dirs, run_name
from plots.render import Block, fmt_num, to_html, to_markdown
from plots.tables import GLOSSARY, UNSETTLED_NOTE, pivot, pivot_table, tflops_cell
from bench.spec.study import Study, load_study
from plots.deltas import fmt_interval
from plots.verdict import DEFAULT_LAYERS, build_verdict
from plots.verdict import blocks as verdict_blocks
from plots.first_screen import first_screen_blocks as verdict_first_screen

MIB = 1024 * 1024


def _interval(s: Stat | None) -> str:
    return fmt_interval(s) if s else "-"


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
    if any(str(b).startswith("reference") for b in backends):
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
    return [("h", 3, "Environment"), ("table", headers, rows)]


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
    blocks: list[Block] = [("h", 3, "Detail per configuration (bytes, memory, stopping)")]
    groups = sorted(by_config(data.records).values(), key=lambda g: config_sort_key(g[0]))
    for group in groups:
        r0 = group[0]
        best = fd.best_variant(group)
        blocks.append(("h", 4, r0.config_id))
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
    gpus = {(r.config_id, r.variant): _gpu_of(data, r) for r in data.records}
    rows = []
    for cfg in fd.peers(data.records):
        for i in cfg["implementations"]:
            gpu = gpus.get((cfg["config_id"], i["name"]))
            rows.append([cfg["config_id"], i["name"], i["kind"], fmt_num(i["forward_ms"]), fmt_num(i["backward_ms"]),
                         tflops_cell(i["forward_tflops"], gpu), tflops_cell(i["backward_tflops"], gpu),
                         tflops_cell(i["forward_tflops_own"], gpu), tflops_cell(i["backward_tflops_own"], gpu),
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
                                 "implementation computes (the causal bound does less, the bidirectional bound more). A value above "
                                 "the GPU's dense bf16 peak is flagged instead of shown as throughput."),
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


def _gpu_of(data: RunData, rec: Record) -> Optional[str]:
    env = data.env_by_dir.get(data.record_dir.get((rec.config_id, rec.variant)))
    return (env or {}).get("gpu")


def title_blocks(data: RunData, study: Optional[Study] = None) -> list[Block]:
    """The title line: what was measured, where, from which runs."""
    dirs = data.run_dirs()
    envs = [data.env_by_dir[d] for d in dirs if d in data.env_by_dir]
    gpus = sorted({str(e.get("gpu") or e.get("device") or "?") for e in envs}) or ["environment unknown"]
    backends = sorted({r.backend or "?" for r in data.records})
    configs = len(by_config(data.records))
    line = (f"{configs} configurations, {len(data.records)} records; {' / '.join(gpus)}; backend "
            f"{', '.join(backends)}. Times in ms: medians of interleaved rounds, brackets 95% intervals.")
    question = (study or load_study()).question
    return [("h", 1, f"prefixbench report: {question}"), ("p", line, "title")]


PROVENANCE_KEYS = (("GPU", "gpu"), ("host", "hostname"), ("torch", "torch"), ("git revision", "git_revision"))


def mixing_warning(data: RunData) -> list[Block]:
    """A warning when records come from several runs, or the runs differ in host, GPU, torch or revision."""
    dirs = list(dict.fromkeys(data.run_dirs() + [d for d in data.sources if run_name(d) in data.run_names()]))
    if len(dirs) < 2:
        return []
    envs = [data.env_by_dir.get(d, {}) for d in dirs]
    differ = [label for label, key in PROVENANCE_KEYS if len({str(e.get(key)) for e in envs}) > 1]
    text = (f"{len(dirs)} runs ({', '.join(run_name(d) for d in dirs)})"
            + (f" that differ in {', '.join(differ)}" if differ else "")
            + ": each delta is paired within one run, named beside it; absolute times of separate runs differ "
              "by up to ~1% (provenance in the appendix).")
    return [("warn", text)]


def provenance_blocks(data: RunData) -> list[Block]:
    """Per configuration: the run directory its records came from, with that run's GPU, torch, revision, date."""
    rows = []
    for group in sorted(by_config(data.records).values(), key=lambda g: config_sort_key(g[0])):
        dirs = list(dict.fromkeys(data.record_dir[(r.config_id, r.variant)] for r in group))
        for d in dirs:
            env = data.env_by_dir.get(d, {})
            rows.append([group[0].config.label, str(d), str(env.get("gpu", "-")), str(env.get("torch", "-")),
                         str(env.get("git_revision", "-"))[:14], str(env.get("date_utc", "-")),
                         str(sum(data.record_dir[(r.config_id, r.variant)] == d for r in group))])
    return [("h", 3, "Provenance per configuration"),
            ("table", ["configuration", "run directory", "GPU", "torch", "git revision", "date (UTC)", "records"],
             rows)]


def pivot_blocks(data: RunData) -> list[Block]:
    headers, rows = pivot_table(pivot(data.records))
    return [("h", 2, "All results: configurations x implementations"),
            ("p", "Backward and forward ms per implementation: median [95% interval]; a status (crashed, oom, "
                  "skipped) where there is no timing, '-' where it was not measured. " + UNSETTLED_NOTE),
            ("table", headers, rows)]


def ideal_blocks(data: RunData) -> list[Block]:
    """Each variant's time over the ideal (PrefixLM pairs at FA3's bidirectional single-pass rate)."""
    recs = []
    for group in by_config(data.records).values():
        if not any(r.ideal for r in group):          # records older than the `ideal` key: same ratios, here
            group = [dataclasses.replace(r) for r in group]
            fill_ideal(group)
        recs += [r for r in group if r.ideal and r.ok]
    if not recs:
        return []
    names = list(dict.fromkeys(r.variant for r in recs))
    groups = by_config(recs)
    rows = []
    for group in sorted(groups.values(), key=lambda g: config_sort_key(g[0])):
        have = {r.variant: r.ideal for r in group}
        rows.append([group[0].config.label] + [
            "-" if n not in have else f"{have[n]['fwd_bwd']:.2f}x (bwd {have[n]['bwd']:.2f}x)" for n in names])
    return [("h", 2, "Distance to the ideal"),
            ("p", "Time over the ideal: fwd+bwd (and backward alone) of each variant over the PrefixLM pair count "
                  "of the batch at the rate (ms per attended pair) of FA3's bidirectional single pass "
                  "(fa3_bidir_bound) on the same configuration. 1.00x would match that rate."),
            ("table", ["configuration"] + names, rows)]


def glossary_blocks() -> list[Block]:
    return [("h", 2, "Glossary"), ("table", ["term", "meaning"], [[k, v] for k, v in GLOSSARY.items()])]


def figure_blocks(figures: list[dict[str, Any]], level: int = 3) -> list[Block]:
    """Each figure with its takeaway as the caption and its data file under it."""
    out: list[Block] = []
    for fig in figures:
        out += [("h", level, fig["title"]), ("img", fig["title"], fig["png"], fig["svg"], fig.get("caption", "")),
                ("p", f"Data: figures/{Path(fig['csv']).name}" if fig.get("csv") else "", "small")]
    return out


def build_report(dirs: list[str | Path], out: str | Path, extra_notes: Optional[list[str]] = None,
                 layers: int = DEFAULT_LAYERS, study: Optional[Study] = None) -> dict[str, Path]:
    """Write OUT/report.md, OUT/report.html and OUT/figures/*; return their paths.

    Order: the four answers (first screen), the figure that shows the effect, the full verdict and pivot
    tables, peers, validation and profiles, the glossary, then the appendix (the other figures,
    provenance, environment, notes, per-configuration detail). `layers`: the stated model's depth.
    """
    if layers < 1:
        raise UserError(f"--layers {layers}: give a positive number of layers")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: a file of that name exists (the report needs a directory)")
    make_out_dir(out)                                  # unwritable: one line, before any work
    data = load_dirs(list(dirs))
    study = study or load_study()
    verdict = build_verdict(data.records, data.validation, study=study, runs=data.runs, layers=layers)
    figures, fig_notes = render_all(data, out / "figures", verdict)
    main = [f for f in figures if f.get("main")]
    appendix = [f for f in figures if not f.get("main")]
    blocks: list[Block] = title_blocks(data, study) + mixing_warning(data) + verdict_first_screen(verdict)
    if main:
        blocks += [("h", 2, "The effect")] + figure_blocks(main)
    blocks += verdict_blocks(verdict, "Verdict in full") + pivot_blocks(data) + ideal_blocks(data)
    blocks += backend_blocks(data.records, data.record_dir)
    blocks += host_overhead_blocks(data.records)
    blocks += peers_blocks(data) + validation_blocks(data) + breakdown_blocks(data)
    blocks += glossary_blocks()
    blocks += [("h", 2, "Appendix")]
    if appendix:
        blocks += [("h", 3, "Other figures")] + figure_blocks(appendix, 4)
    blocks += provenance_blocks(data) + env_blocks(data)
    notes = list(extra_notes or []) + notes_for(data) + fig_notes
    blocks += [("h", 3, "Notes"), ("ul", notes or ["none"])] + summary_blocks(data)
    blocks = [b for b in blocks if not (b[0] == "p" and not b[1])]
    md, html_path = out / "report.md", out / "report.html"
    md.write_text(to_markdown(blocks, out))
    html_path.write_text(to_html(blocks, "prefixbench report"))
    return {"markdown": md, "html": html_path, "figures": out / "figures"}
