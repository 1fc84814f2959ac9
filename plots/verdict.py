"""The review's answer, computed from records: one row per configuration and sentences built from them.

The guard PR's own number is the paired difference zeros_always - guarded_passthrough (the reverted
version against the merged one), from per-round samples so drift between rounds cancels; it uses
`bench.results.derived.paired_difference` and `predicted_extra_ms`, the same code as
`scripts/paired_difference.py`, so the two always agree. Where the records cannot answer a question
(CPU reference timings, a variant not measured, no per-round samples, a delta whose interval is still
wide) the sentences say so instead of guessing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from bench.results.derived import paired_difference, predicted_extra_ms
from bench.spec.names import BLOCK_PREFIX
from bench.results.stats import Stat
from plots import fields as f

BASELINE = "zeros_always"
FIRST_COMMIT = "guarded_zero_fill"
MERGED = "guarded_passthrough"
OURS = "prefix_rows_add"
UNGUARDED = "unguarded"
PR_CANDIDATES = (MERGED, FIRST_COMMIT)
VARIANT_ORDER = (BASELINE, FIRST_COMMIT, MERGED, OURS, UNGUARDED)
CONVERGED_REL_CI = 0.05          # a delta has converged when its 95% CI is within +-5% of itself

VARIANT_ORIGIN: dict[str, str] = {
    UNGUARDED: "upstream before PR #9: no guard, both passes always run",
    BASELINE: "PR #9, reverted: dK2/dV2 zero-filled on every backward",
    FIRST_COMMIT: "PR #13, first commit: dK2/dV2 zero-filled only when the causal pass is skipped",
    MERGED: "PR #13 as merged (follow-up commit 428dfc5): no dK2/dV2 at all when the causal pass is skipped",
    OURS: "prefixbench's, not in the PR: no zero-fill, dK1 added on prefix rows only",
}
TABLE_CAPTION = (f"Backward ms (medians) per variant. PR saving = {BASELINE} - {MERGED}, paired per round, and as % "
                 f"of {BASELINE}'s backward; byte model = the saving its byte counts predict; converged = its 95% CI "
                 f"within +-{CONVERGED_REL_CI:.0%} of itself; guard cost = {MERGED} - {UNGUARDED}; ours beyond PR = "
                 f"{MERGED} - {OURS}.")
SHORT_ORIGIN = {UNGUARDED: "no guard", BASELINE: "PR #9", FIRST_COMMIT: "PR #13's first commit",
                MERGED: "PR #13 as merged", OURS: "ours, not in the PR"}
GUARD_BRANCH_NOTE = ("Only batches in which no sequence has causal tokens take the guard's branch (the causal "
                     "pass is skipped); every other batch runs both passes, and there the PR's variants differ "
                     "only in what they zero-fill.")


@dataclass
class VerdictRow:
    """One configuration: backward medians per variant and the paired deltas the verdict reads."""
    config_id: str
    distribution: str
    tokens: int
    label: str
    backward: dict[str, dict] = field(default_factory=dict)     # variant -> backward Stat dict (ok records)
    status: dict[str, str] = field(default_factory=dict)        # variant -> ok | crashed | oom | error
    reference: bool = False                                     # timed on the reference backend / CPU
    guard_branch: Optional[bool] = None                         # no causal tokens: the guard skips a pass
    saving: Optional[Stat] = None                               # zeros_always - guarded_passthrough
    saving_pct: Optional[float] = None                          # of zeros_always's backward median
    predicted: Optional[tuple[float, float, float]] = None      # byte model: (ms, lo, hi)
    guard_cost: Optional[Stat] = None                           # guarded_passthrough - unguarded
    ours_beyond: Optional[Stat] = None                          # guarded_passthrough - prefix_rows_add
    has_samples: bool = False
    block_step_ms: Optional[float] = None                       # block:guarded_passthrough forward + backward
    saving_pct_block: Optional[float] = None                    # the PR's saving as % of that training step

    @property
    def converged(self) -> Optional[bool]:
        return None if self.saving is None else self.saving.rel_ci <= CONVERGED_REL_CI


@dataclass
class Verdict:
    rows: list[VerdictRow]
    variants: list[str]                 # backward columns, PR order first, then anything else measured
    sentences: list[str]
    origins: dict[str, str]


def _tokens_label(tokens: int) -> str:
    return f"{tokens // 1024}k" if tokens >= 1024 and tokens % 1024 == 0 else str(tokens)


def _paired(a: Optional[Any], b: Optional[Any]) -> Optional[Stat]:
    """a - b backward, per round; None unless both are ok and carry round-aligned samples."""
    if a is None or b is None:
        return None
    sa, sb = f.samples(a, "backward"), f.samples(b, "backward")
    return paired_difference(sa, sb) if sa and sb else None


def _row(group: list[Any], label: str) -> VerdictRow:
    r0 = group[0]
    ok = {f.name(r): r for r in group if f.is_ok(r) and f.kind(r) == "variant"}
    causal = f.causal_tokens(r0)
    row = VerdictRow(f.config_id(r0), f.distribution(r0), f.tokens(r0), label,
                     backward={n: f.stat(r, "backward") for n, r in ok.items() if f.stat(r, "backward")},
                     status={f.name(r): f.status(r) for r in group if f.kind(r) == "variant"},
                     reference=any(f.on_reference(r) for r in group),
                     guard_branch=None if causal is None else causal == 0)
    base, merged = ok.get(BASELINE), ok.get(MERGED)
    row.has_samples = bool(base and merged and f.samples(base, "backward") and f.samples(merged, "backward"))
    row.saving = _paired(base, merged)
    if row.saving is not None and row.backward.get(BASELINE):
        row.saving_pct = 100 * row.saving.median / row.backward[BASELINE]["median"]
    if base and merged and f.has_byte_model(base) and f.has_byte_model(merged):
        p, (lo, hi) = predicted_extra_ms(base, merged, f.bandwidth(base))
        row.predicted = (p, lo, hi)
    block = next((r for r in group if f.is_ok(r) and f.name(r) == BLOCK_PREFIX + MERGED), None)
    if block is not None and f.median(block, "forward") is not None:
        row.block_step_ms = f.median(block, "forward") + f.median(block, "backward")
        if row.saving is not None:
            row.saving_pct_block = 100 * row.saving.median / row.block_step_ms
    row.guard_cost = _paired(merged, ok.get(UNGUARDED))
    row.ours_beyond = _paired(merged, ok.get(OURS))
    return row


def verdict_rows(records: Iterable[Any]) -> list[VerdictRow]:
    """One row per configuration, in the order configurations first appear."""
    groups: dict[str, list[Any]] = {}
    for rec in records:
        groups.setdefault(f.config_id(rec), []).append(rec)
    labels = [f"{f.distribution(g[0])} {_tokens_label(f.tokens(g[0]))}" for g in groups.values()]
    unique = len(set(labels)) == len(labels)
    return [_row(g, lab if unique else cid) for (cid, g), lab in zip(groups.items(), labels)]


# ---- sentences -------------------------------------------------------------------------------------

def _ms(x: float) -> str:
    return f"{x:.3g}"


def _range(values: list[float], unit: str = " ms") -> str:
    lo, hi = min(values), max(values)
    return f"{_ms(lo)}{unit}" if _ms(lo) == _ms(hi) else f"{_ms(lo)} to {_ms(hi)}{unit}"


def _pct_range(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.1f}%" if f"{lo:.1f}" == f"{hi:.1f}" else f"{lo:.1f}% to {hi:.1f}%"


def _names(rows: list[VerdictRow]) -> str:
    return ", ".join(r.label for r in rows)


def _measured(rows: list[VerdictRow], name: str) -> bool:
    return any(name in r.backward for r in rows)


def _cannot(what: str, name: str) -> str:
    return f"Cannot answer {what}: no ok record of {name} ({VARIANT_ORIGIN.get(name, 'not in the PR')})."


def _backend_sentences(rows: list[VerdictRow]) -> tuple[list[str], list[VerdictRow]]:
    ref = [r for r in rows if r.reference]
    gpu = [r for r in rows if not r.reference]
    if ref and not gpu:
        return (["These records come from the reference backend on the CPU: they check the pipeline, not GPU "
                 "speed, so this report cannot answer which variant is faster (run the sweep with fa3 on a GPU)."],
                [])
    if ref:
        return [f"{len(ref)} configurations ran on the reference backend or the CPU and are left out of the "
                f"verdict: {_names(ref)}."], gpu
    return [], gpu


def _merge_sentence(rows: list[VerdictRow], records_by_config: dict[str, dict[str, Any]]) -> list[str]:
    if not _measured(rows, BASELINE):
        return [_cannot("what the PR saves", BASELINE)]
    candidates = [c for c in PR_CANDIDATES if _measured(rows, c)]
    if not candidates:
        return [_cannot("which of the PR's variants to merge", MERGED)]
    if not any(r.has_samples for r in rows) and not any(
            _paired(records_by_config[r.config_id].get(BASELINE), records_by_config[r.config_id].get(c))
            for r in rows for c in candidates):
        return ["Cannot answer what the PR saves: the records hold no per-round samples (samples_ms), so no "
                "paired difference can be formed."]
    savings: dict[str, list[tuple[VerdictRow, Stat]]] = {}
    for c in candidates:
        savings[c] = [(r, d) for r in rows
                      if (d := _paired(records_by_config[r.config_id].get(BASELINE),
                                       records_by_config[r.config_id].get(c))) is not None]
    # decisive wins of each candidate over the other (paired CI excludes 0)
    wins = {c: 0 for c in candidates}
    if len(candidates) == 2:
        a, b = candidates
        for r in rows:
            recs = records_by_config[r.config_id]
            d = _paired(recs.get(b), recs.get(a))          # b - a > 0: a faster
            if d is not None and d.lo > 0:
                wins[a] += 1
            elif d is not None and d.hi < 0:
                wins[b] += 1
    pick = max(candidates, key=lambda c: (wins[c], sum(d.median for _, d in savings[c]), c == MERGED))
    pairs = savings[pick]
    if not pairs:
        return [_cannot("what the PR saves", pick)]
    pct = [100 * d.median / r.backward[BASELINE]["median"] for r, d in pairs if BASELINE in r.backward]
    text = (f"Merge {pick} ({SHORT_ORIGIN[pick]}): against {BASELINE} (PR #9) it saves "
            f"{_range([d.median for _, d in pairs])} per attention backward ({_pct_range(pct)} of it) over the "
            f"{len(pairs)} configurations measured")
    slower = [r for r, d in pairs if d.hi < 0]
    text += f"; it is slower than {BASELINE} in {_names(slower)}." if slower else "."
    other = [c for c in candidates if c != pick]
    if other:
        o = other[0]
        if wins[o] == 0 and wins[pick] == 0:
            text += f" {o} ({SHORT_ORIGIN[o]}) is indistinguishable from it in every configuration."
        else:
            text += (f" {o} ({SHORT_ORIGIN[o]}) is slower in {wins[pick]} configurations and faster in "
                     f"{wins[o]}.")
    return [text]


def _ours_sentence(rows: list[VerdictRow]) -> list[str]:
    if not _measured(rows, OURS):
        return [_cannot(f"what {OURS} saves beyond the PR", OURS)]
    if not _measured(rows, MERGED):
        return [_cannot(f"what {OURS} saves beyond the PR", MERGED)]
    pairs = [(r, r.ours_beyond) for r in rows if r.ours_beyond is not None]
    if not pairs:
        return [f"Cannot answer what {OURS} saves beyond the PR: no configuration has per-round samples of both "
                f"it and {MERGED}."]
    faster = [(r, d) for r, d in pairs if d.lo > 0]
    slower = [(r, d) for r, d in pairs if d.hi < 0]
    text = f"{OURS} ({SHORT_ORIGIN[OURS]}) "
    if faster:
        pct = [100 * d.median / r.backward[MERGED]["median"] for r, d in faster]
        text += (f"saves a further {_range([d.median for _, d in faster])} ({_pct_range(pct)} of {MERGED}'s "
                 f"backward) in {len(faster)} of {len(pairs)} configurations")
    else:
        text += f"is faster than {MERGED} in none of the {len(pairs)} configurations"
    if slower:
        text += "; it is slower in " + ", ".join(
            f"{r.label} (by {_ms(-d.median)} ms [{_ms(-d.hi)}, {_ms(-d.lo)}])" for r, d in slower) + "."
    else:
        text += "; it is slower in none."
    return [text]


def _block_sentence(rows: list[VerdictRow]) -> list[str]:
    """The PR's saving inside a training step, where the transformer block was measured."""
    with_block = [r for r in rows if r.saving_pct_block is not None]
    if not with_block:
        return []
    return [f"Inside a training step the PR saves {_pct_range([r.saving_pct_block for r in with_block])} of one "
            f"transformer block's forward+backward ({BLOCK_PREFIX}{MERGED}, {_range([r.block_step_ms for r in with_block])}) "
            f"against {_pct_range([r.saving_pct for r in with_block if r.saving_pct is not None])} of the attention "
            f"backward, over {len(with_block)} configurations."]


def _guard_cost_sentence(rows: list[VerdictRow]) -> list[str]:
    costs = [(r, r.guard_cost) for r in rows if r.guard_cost is not None]
    if not costs:
        why = ("it has no ok record here (it crashes where the guard matters, or was not measured)"
               if not _measured(rows, UNGUARDED) else "its records hold no per-round samples")
        return [f"Cannot answer what the guard itself costs ({MERGED} - {UNGUARDED}): {why}."]
    noise = sum(d.lo <= 0 <= d.hi for _, d in costs)
    return [f"The guard itself costs {_range([d.median for _, d in costs])} per backward ({MERGED} - {UNGUARDED}, "
            f"paired, in the {len(costs)} configurations where {UNGUARDED} runs); its 95% CI includes zero in "
            f"{noise} of them."]


def _guard_branch_sentence(rows: list[VerdictRow]) -> list[str]:
    taken = [r for r in rows if r.guard_branch]
    known = [r for r in rows if r.guard_branch is not None]
    if not known:
        return ["Cannot tell which batches take the guard's branch: the records hold no batch summary."]
    if not taken:
        return ["No batch here lacks causal tokens, so none takes the guard's branch: the PR's variants differ "
                "only in what they zero-fill."]
    return [f"Only batches with no causal tokens take the guard's branch (the causal pass is skipped): here "
            f"{_names(taken)}; in the other {len(known) - len(taken)} configurations every PR variant runs both "
            "passes and they differ only in what they zero-fill."]


def _convergence_sentence(rows: list[VerdictRow]) -> list[str]:
    with_delta = [r for r in rows if r.saving is not None]
    if not with_delta:
        return []
    loose = [r for r in with_delta if not r.converged]
    if not loose:
        return [f"Every PR delta converged (95% CI within +-{CONVERGED_REL_CI:.0%} of itself)."]
    return ["The PR's delta did not converge (95% CI wider than +-"
            f"{CONVERGED_REL_CI:.0%} of itself) in " + ", ".join(
                f"{r.label} (+-{r.saving.rel_ci:.0%})" for r in loose) + ": those rows are not settled "
            "(`prefixbench sweep --suite pr_delta` runs the pair alone until its delta settles)."]


def _model_sentence(rows: list[VerdictRow]) -> list[str]:
    pairs = [(r.saving.median, r.predicted[0]) for r in rows
             if r.saving is not None and r.predicted is not None and r.predicted[0] and not r.guard_branch]
    if not pairs:
        return []
    ratios = [m / p for m, p in pairs]
    within = sum(abs(x - 1) <= 0.2 for x in ratios)
    return [f"The byte model predicts the saving within 20% in {within} of {len(pairs)} configurations that run "
            f"both passes (measured / predicted {min(ratios):.2f} to {max(ratios):.2f})."]


def _smallest(rows: list[dict]) -> dict:
    return min(rows, key=lambda v: (sum(v.get("prefix_lens") or []) + sum(v.get("causal_lens") or []),
                                    len(v.get("prefix_lens") or []), v["pattern"]))


def crash_sentences(validation: list[dict], measured: Iterable[str] = ()) -> list[str]:
    """Per variant: which batch patterns fail it, what they share, and the smallest lengths that reproduce it.

    `measured`: variants the sweep timed; one the validation rows lack gets a "not validated" sentence.
    """
    if not validation:
        return ["No validation rows: which batch patterns crash each variant is not answered here "
                "(run `prefixbench validate`)."]
    by_variant: dict[str, list[dict]] = {}
    for v in validation:
        by_variant.setdefault(v["variant"], []).append(v)
    order = [n for n in VARIANT_ORDER if n in by_variant] + sorted(n for n in by_variant if n not in VARIANT_ORDER)
    out = []
    missing = [n for n in measured if n not in by_variant]
    if missing:
        out.append(f"Not in the validation rows, so their crashes are not answered here: {', '.join(missing)}.")
    if any(v.get("backend") == "reference" for v in validation):
        out.append("The validation rows come from the reference backend, which mirrors FA3's empty-pass crash by "
                   "design; confirm the crashes with fa3 on a GPU.")
    groups: dict[tuple, list[str]] = {}         # variants failing the same patterns share one sentence
    for name in order:
        rows = by_variant[name]
        failing = [v for v in rows if v["outcome"] != "ok"]
        key = (len({v["pattern"] for v in rows}), tuple(sorted({v["pattern"] for v in failing})),
               tuple(sorted({v["outcome"] for v in failing})))
        groups.setdefault(key, []).append(name)
    for (n_patterns, bad, outcomes), names in groups.items():
        who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        if not bad:
            out.append(f"{who} {'passes' if len(names) == 1 else 'pass'} all {n_patterns} batch patterns.")
            continue
        failing = [v for v in by_variant[names[0]] if v["outcome"] != "ok"]
        shared = ""
        if all(sum(v.get("prefix_lens") or [1]) == 0 for v in failing):
            shared = ", every one a batch with no prefix tokens"
        elif all(sum(v.get("causal_lens") or [1]) == 0 for v in failing):
            shared = ", every one a batch with no causal tokens"
        small = _smallest(failing)
        out.append(f"{who} {'fails' if len(names) == 1 else 'fail'} ({'/'.join(outcomes)}) on {len(bad)} of "
                   f"{n_patterns} batch patterns{shared}: {', '.join(bad)}; smallest reproducer: prefix_lens "
                   f"{small.get('prefix_lens')}, causal_lens {small.get('causal_lens')}.")
    return out


def build_verdict(records: Iterable[Any], validation: Optional[list[dict]] = None) -> Verdict:
    """Rows and sentences from records (+ validation rows); nothing here is written by hand per run."""
    records = list(records)
    rows = verdict_rows(records)
    by_config: dict[str, dict[str, Any]] = {}
    for rec in records:
        if f.is_ok(rec):
            by_config.setdefault(f.config_id(rec), {})[f.name(rec)] = rec
    for r in rows:
        by_config.setdefault(r.config_id, {})
    present = {n for r in rows for n in r.status}
    variants = [n for n in VARIANT_ORDER if n in present and n != UNGUARDED] + sorted(
        n for n in present if n not in VARIANT_ORDER) + ([UNGUARDED] if UNGUARDED in present else [])
    sentences, speed_rows = _backend_sentences(rows)
    if speed_rows:
        sentences += _merge_sentence(speed_rows, by_config)
        sentences += _block_sentence(speed_rows)
        sentences += _ours_sentence(speed_rows)
        sentences += _guard_cost_sentence(speed_rows)
    sentences += _guard_branch_sentence(rows)
    sentences += crash_sentences(validation or [], [n for n in variants if n in VARIANT_ORDER])
    if speed_rows:
        sentences += _convergence_sentence(speed_rows) + _model_sentence(speed_rows)
    crashed = [(r, n) for r in rows for n, s in r.status.items() if s != "ok" and n != UNGUARDED]
    if crashed:
        sentences.append("In the sweep itself " + ", ".join(f"{n} {r.status[n]} on {r.label}" for r, n in crashed)
                         + ".")
    origins = {n: VARIANT_ORIGIN.get(n, "not in the PR") for n in variants}
    return Verdict(rows, variants, sentences, origins)


# ---- rendering -------------------------------------------------------------------------------------

def _ci(s: Optional[Stat]) -> str:
    return "-" if s is None else f"{_ms(s.median)} [{_ms(s.lo)}, {_ms(s.hi)}]"


def _bwd_cell(row: VerdictRow, name: str) -> str:
    s = row.backward.get(name)
    if s is not None:
        return f"{s['median']:.4g}"
    return row.status.get(name, "-")


def _converged_cell(row: VerdictRow) -> str:
    c = row.converged
    return "-" if c is None else ("yes" if c else f"no (+-{row.saving.rel_ci:.0%})")


def table(verdict: Verdict) -> tuple[list[str], list[list[str]]]:
    """Headers and string rows of the verdict table (markdown / HTML)."""
    headers = (["configuration", "guard branch"] + list(verdict.variants)
               + ["PR saving ms [95% CI]", "% of bwd", "byte model ms", "converged", "guard cost ms",
                  "ours beyond PR ms"])
    rows = []
    for r in verdict.rows:
        model = "-" if r.predicted is None else _ms(r.predicted[0])
        rows.append([r.label + (" (reference)" if r.reference else ""),
                     "-" if r.guard_branch is None else ("taken" if r.guard_branch else "no")]
                    + [_bwd_cell(r, n) for n in verdict.variants]
                    + [_ci(r.saving), "-" if r.saving_pct is None else f"{r.saving_pct:.1f}%", model,
                       _converged_cell(r), _ci(r.guard_cost), _ci(r.ours_beyond)])
    return headers, rows


SHORT_HEADER = {BASELINE: "#9", FIRST_COMMIT: "#13 1st", MERGED: "#13", OURS: "ours", UNGUARDED: "unguarded"}
COMPACT_VARIANTS = (BASELINE, FIRST_COMMIT, MERGED, OURS)


def _converged_mark(row: VerdictRow) -> str:
    c = row.converged
    return "-" if c is None else ("yes" if c else f"NO +-{row.saving.rel_ci:.0%}")


def compact_table(verdict: Verdict) -> tuple[list[str], list[list[str]]]:
    """The first screen's table: distribution, tokens, the PR's variants' and ours' backward ms, the PR's
    saving [95% CI] and %, and whether that delta converged (the full table comes further down)."""
    names = [n for n in COMPACT_VARIANTS if n in verdict.variants]
    blocks = any(r.block_step_ms is not None for r in verdict.rows)
    headers = (["distribution", "tokens"] + [f"{SHORT_HEADER[n]} bwd ms" for n in names]
               + ["PR saving ms [95% CI]", "% of bwd"] + (["% of block step"] if blocks else []) + ["converged"])
    rows = []
    for r in verdict.rows:
        block = ["-" if r.saving_pct_block is None else f"{r.saving_pct_block:.2f}%"] if blocks else []
        rows.append([r.distribution + (" (reference)" if r.reference else ""), _tokens_label(r.tokens)]
                    + [_bwd_cell(r, n) for n in names]
                    + [_ci(r.saving), "-" if r.saving_pct is None else f"{r.saving_pct:.1f}%"] + block
                    + [_converged_mark(r)])
    return headers, rows


def mapping_line(verdict: Verdict) -> str:
    """Which variant is which commit, in one line under the first-screen table."""
    return "; ".join(f"{SHORT_HEADER.get(n, n)} = {n}: {o}" for n, o in verdict.origins.items()) + "."


def first_screen_blocks(verdict: Verdict) -> list[tuple]:
    """What a reviewer reads without scrolling: the compact table, the sentences, the commit mapping."""
    headers, rows = compact_table(verdict)
    return [("table", headers, rows, "compact"), ("ul", verdict.sentences, "verdict"),
            ("p", mapping_line(verdict) + " " + GUARD_BRANCH_NOTE, "small")]


def blocks(verdict: Verdict, title: str = "Verdict") -> list[tuple]:
    """Blocks for plots.render (Markdown and HTML share them)."""
    headers, rows = table(verdict)
    return [("h", 2, title), ("ul", verdict.sentences), ("p", TABLE_CAPTION), ("table", headers, rows),
            ("p", GUARD_BRANCH_NOTE),
            ("table", ["variant", "what it is"], [[n, o] for n, o in verdict.origins.items()])]


def to_markdown(verdict: Verdict) -> str:
    from plots.render import to_markdown as render
    return render(blocks(verdict), Path("."))


def to_terminal(verdict: Verdict) -> str:
    """A plain-text block for the end of a sweep: medians only, short columns, then the sentences."""
    short = SHORT_HEADER
    names = [short.get(n, n) for n in verdict.variants]
    headers = ["configuration", "branch"] + [f"{s} ms" for s in names] + ["PR saving ms [95% CI]", "%", "model ms",
                                                                          "conv."]
    body = []
    for r in verdict.rows:
        body.append([r.label + (" (ref)" if r.reference else ""),
                     "-" if r.guard_branch is None else ("taken" if r.guard_branch else "no")]
                    + [_bwd_cell(r, n) for n in verdict.variants]
                    + [_ci(r.saving), "-" if r.saving_pct is None else f"{r.saving_pct:.1f}",
                       "-" if r.predicted is None else _ms(r.predicted[0]), _converged_cell(r)])
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *body)]
    line = lambda cells: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    out = ["Verdict (backward ms, medians)", line(headers), line(["-" * w for w in widths])]
    out += [line(row) for row in body]
    out.append("")
    out += [f"{short.get(n, n)} = {n}: {o}" for n, o in verdict.origins.items()]
    out.append("")
    out += [f"* {s}" for s in verdict.sentences]
    return "\n".join(out) + "\n"
