"""The review's answer, computed from records: one row per configuration and sentences built from them.

Which variant plays which role (the baseline the PR replaced, the PR as merged, its first commit,
ours, the unguarded version) comes from a study file (`bench.spec.study`), so another PR's variants
get the same verdict without code changes. The PR's number is the paired difference baseline - merged
over pairs of rounds (`bench.results.derived.paired_difference`, the same code as `scripts/paired_difference.py`).
Every delta carries a status (faster / slower / same, `plots.deltas`); "saves" is said only where the
interval excludes zero, and below `MIN_PAIRS` pairs there is no interval at all. Where a configuration
was measured by several runs, the settled one (converged, else the narrowest interval) gives the delta,
and the row names it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from bench.results.derived import predicted_extra_ms
from bench.spec.names import BLOCK_PREFIX, split_backend
from bench.spec.study import Study, load_study
from bench.results.stats import Stat
from plots import fields as f
from plots.deltas import (FASTER, MIN_PAIRS, SAME, SETTLED_REL_CI, SLOWER, TOO_FEW, Delta, across_runs, cell,
                          counts, counts_text, fmt_interval, paired)

CONVERGED_REL_CI = SETTLED_REL_CI
DRIFT_NOTE_RATIO = 1.25      # a row is named as widened by drift from this width ratio on (iid noise: ~1.1)
DEFAULT_LAYERS = 32          # the stated model: 32 blocks of the suite's heads x head_dim
Runs = dict[str, list[tuple[str, dict[str, Any]]]]   # config -> [(run name, {implementation: record})]


@dataclass
class StepRow:
    """Per training step of `layers` blocks, from the block measured in one run (`source`)."""
    label: str
    tokens: int
    layers: int
    source: str
    step_ms: float                      # one block's forward + backward (the merged variant), GPU time
    measured: Optional[Delta]           # block: baseline - merged, fwd+bwd per round (one block)
    derived: Optional[Delta]            # attention backward: baseline - merged in the same run (one layer)
    heads: Optional[int] = None
    head_dim: Optional[int] = None
    eager_step_ms: Optional[float] = None
    eager_measured: Optional[Delta] = None
    eager_derived: Optional[Delta] = None

    def ms(self, delta: Optional[Delta]) -> Optional[Stat]:
        """The per-step saving of `layers` layers (ms) for one block's delta."""
        if delta is None or delta.stat is None:
            return None
        s = delta.stat
        return Stat(s.median * self.layers, s.lo * self.layers, s.hi * self.layers, s.n)

    def pct(self, delta: Optional[Delta], eager: bool = False) -> Optional[float]:
        step = self.eager_step_ms if eager else self.step_ms
        if delta is None or delta.stat is None or not step:
            return None
        return 100 * delta.stat.median / step


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
    saving_delta: Optional[Delta] = None                        # baseline - merged (the settled run's,
                                                                # spanning runs it disagrees with)
    saving_source: Optional[str] = None                         # the run that gave it
    run_delta: Optional[Delta] = None                           # that run's own delta, before the span
    other_runs: list[tuple[str, Delta]] = field(default_factory=list)   # the same delta in other runs
    saving_pct: Optional[float] = None                          # of the baseline's backward median
    predicted: Optional[tuple[float, float, float]] = None      # byte model: (ms, lo, hi)
    guard_cost: Optional[Delta] = None                          # merged - unguarded
    ours_beyond: Optional[Delta] = None                         # merged - ours
    first_vs_merged: Optional[Delta] = None                     # first commit - merged
    has_samples: bool = False
    step: Optional[StepRow] = None

    @property
    def saving(self) -> Optional[Stat]:
        return None if self.saving_delta is None else self.saving_delta.stat

    @property
    def saving_status(self) -> Optional[str]:
        return None if self.saving_delta is None else self.saving_delta.status()

    @property
    def converged(self) -> Optional[bool]:
        return None if self.saving is None else self.saving.rel_ci <= CONVERGED_REL_CI


@dataclass
class CrashRow:
    """One variant of the boundary matrix: the patterns it fails, or none."""
    variant: str
    role: str
    patterns: int
    failing: list[str]
    outcomes: list[str]
    shared: str = ""
    smallest: Optional[dict] = None


@dataclass
class Verdict:
    rows: list[VerdictRow]
    variants: list[str]                 # backward columns, the study's order first, then anything else
    sentences: list[str]
    origins: dict[str, str]
    study: Study = field(default_factory=load_study)
    layers: int = DEFAULT_LAYERS
    crashes: list[CrashRow] = field(default_factory=list)
    crash_notes: list[str] = field(default_factory=list)
    fastest: list[tuple[str, str, str]] = field(default_factory=list)   # (configuration, implementation, needs)

    @property
    def hot_rows(self) -> list[VerdictRow]:
        """Batches with response tokens: every PR variant runs both passes."""
        return [r for r in self.rows if not r.guard_branch and not r.reference]

    @property
    def guard_rows(self) -> list[VerdictRow]:
        """Batches with no causal tokens: the guard's branch runs."""
        return [r for r in self.rows if r.guard_branch and not r.reference]

    @property
    def steps(self) -> list[StepRow]:
        return [r.step for r in self.rows if r.step is not None]


def _tokens_label(tokens: int) -> str:
    return f"{tokens // 1024}k" if tokens >= 1024 and tokens % 1024 == 0 else str(tokens)


def _delta(a: Optional[Any], b: Optional[Any], metric: str = "backward") -> Optional[Delta]:
    """a - b per pair of rounds; None unless both are ok and carry round-aligned samples."""
    if a is None or b is None:
        return None
    return paired(f.samples(a, metric), f.samples(b, metric))


def _step_samples(rec: Any, prefix: str = "") -> Optional[list[float]]:
    fwd, bwd = f.samples(rec, prefix + "forward"), f.samples(rec, prefix + "backward")
    return [x + y for x, y in zip(fwd, bwd)] if fwd and bwd else None


def _step_median(rec: Any, prefix: str = "") -> Optional[float]:
    s = _step_samples(rec, prefix)
    if s:
        from bench.results.stats import median
        return median(s)
    fwd, bwd = f.median(rec, "forward"), f.median(rec, "backward")
    return None if prefix or fwd is None or bwd is None else fwd + bwd


def _runs_from(records: list[Any]) -> Runs:
    out: Runs = {}
    for rec in records:
        runs = out.setdefault(f.config_id(rec), [("records", {})])
        if f.is_ok(rec):
            runs[0][1][f.name(rec)] = rec
    return out


def _settled(candidates: list[tuple[str, Delta]]) -> Optional[tuple[str, Delta]]:
    """The run to trust: settled first, then the narrowest interval; too few pairs last."""
    if not candidates:
        return None
    return min(candidates, key=lambda c: (c[1].stat is None, not c[1].settled,
                                          (c[1].stat.hi - c[1].stat.lo) if c[1].stat else 0.0))


def _step_row(label: str, tokens: int, runs: list[tuple[str, dict[str, Any]]], study: Study,
              layers: int) -> Optional[StepRow]:
    for source, recs in runs:
        merged_block = recs.get(BLOCK_PREFIX + study.merged)
        if merged_block is None:
            continue
        base_block = recs.get(BLOCK_PREFIX + study.baseline)
        step = _step_median(merged_block)
        if not step:
            continue
        measured = paired(_step_samples(base_block), _step_samples(merged_block)) if base_block else None
        eager_measured = (paired(_step_samples(base_block, "eager_"), _step_samples(merged_block, "eager_"))
                          if base_block else None)
        base, merged = recs.get(study.baseline), recs.get(study.merged)
        heads, head_dim, _ = f.shape(merged_block)
        return StepRow(label, tokens, layers, source, step, measured, _delta(base, merged), heads, head_dim,
                       eager_step_ms=_step_median(merged_block, "eager_"), eager_measured=eager_measured,
                       eager_derived=_delta(base, merged, "eager_backward"))
    return None


def _row(group: list[Any], label: str, runs: list[tuple[str, dict[str, Any]]], study: Study,
         layers: int) -> VerdictRow:
    r0 = group[0]
    ok = {f.name(r): r for r in group if f.is_ok(r) and f.kind(r) == "variant"}
    causal = f.causal_tokens(r0)
    row = VerdictRow(f.config_id(r0), f.distribution(r0), f.tokens(r0), label,
                     backward={n: f.stat(r, "backward") for n, r in ok.items() if f.stat(r, "backward")},
                     status={f.name(r): f.status(r) for r in group if f.kind(r) == "variant"},
                     reference=any(f.on_reference(r) for r in group),
                     guard_branch=None if causal is None else causal == 0)
    candidates = [(name, d) for name, recs in runs
                  if (d := _delta(recs.get(study.baseline), recs.get(study.merged))) is not None]
    row.has_samples = bool(candidates)
    pick = _settled(candidates)
    if pick is not None:
        row.saving_source, row.run_delta = pick
        row.other_runs = [c for c in candidates if c[0] != pick[0]]
        row.saving_delta = across_runs(pick, row.other_runs)
        pick_recs = dict(runs)[pick[0]]
        base_stat = f.stat(pick_recs[study.baseline], "backward")
        if row.saving is not None and base_stat:
            row.saving_pct = 100 * row.saving.median / base_stat["median"]
    base, merged = ok.get(study.baseline), ok.get(study.merged)
    if base and merged and f.has_byte_model(base) and f.has_byte_model(merged):
        p, (lo, hi) = predicted_extra_ms(base, merged, f.bandwidth(base))
        row.predicted = (p, lo, hi)
    if study.unguarded:
        row.guard_cost = _delta(merged, ok.get(study.unguarded))
    if study.ours:
        row.ours_beyond = _delta(merged, ok.get(study.ours))
    if study.first_commit:
        row.first_vs_merged = _delta(ok.get(study.first_commit), merged)
    row.step = _step_row(label, row.tokens, runs, study, layers)
    return row


def verdict_rows(records: Iterable[Any], study: Optional[Study] = None, runs: Optional[Runs] = None,
                 layers: int = DEFAULT_LAYERS) -> list[VerdictRow]:
    """One row per configuration of an attention variant, in the order configurations first appear."""
    study = study or load_study()
    records = list(records)
    runs = runs or _runs_from(records)
    groups: dict[str, list[Any]] = {}
    for rec in records:
        groups.setdefault(f.config_id(rec), []).append(rec)
    groups = {c: g for c, g in groups.items() if any(f.kind(r) == "variant" and not f.name(r).startswith(
        BLOCK_PREFIX) for r in g)}
    labels = [f"{f.distribution(g[0])} {_tokens_label(f.tokens(g[0]))}" for g in groups.values()]
    unique = len(set(labels)) == len(labels)
    return [_row(g, lab if unique else cid, runs.get(cid) or _runs_from(g)[cid], study, layers)
            for (cid, g), lab in zip(groups.items(), labels)]


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


def _measured(rows: list[VerdictRow], name: Optional[str]) -> bool:
    return bool(name) and any(name in r.backward for r in rows)


def _cannot(study: Study, what: str, name: str) -> str:
    return f"Cannot answer {what}: no ok record of {name} ({study.describe(name)})."


def _backend_sentences(rows: list[VerdictRow]) -> tuple[list[str], list[VerdictRow]]:
    ref = [r for r in rows if r.reference]
    gpu = [r for r in rows if not r.reference]
    if ref and not gpu:
        return (["These records come from the reference backend on the CPU: they check the pipeline, not GPU "
                 "speed, so this report cannot answer which variant is faster (run the sweep with a kernel "
                 "backend on a GPU)."], [])
    if ref:
        return [f"{len(ref)} configurations ran on the reference backend or the CPU and are left out of the "
                f"verdict: {_names(ref)}."], gpu
    return [], gpu


def saving_sentence(study: Study, rows: list[VerdictRow], where: str) -> str:
    """What the merged PR saves against the baseline on one set of rows, with the status counts."""
    deltas = [r.saving_delta for r in rows if r.saving_delta is not None]
    if not deltas:
        return f"{where}: no paired delta of {study.baseline} and {study.merged}."
    c = counts(deltas)
    text = f"{where}: {study.merged} vs {study.baseline}, {counts_text(c)}"
    saves = [r for r in rows if r.saving_delta is not None and r.saving_status == FASTER]
    if saves:
        pct = [r.saving_pct for r in saves if r.saving_pct is not None]
        text += (f"; it saves {_range([r.saving.median for r in saves])} per attention backward"
                 + (f" ({_pct_range(pct)} of it)" if pct else "") + f" in {_names(saves)}")
    slower = [r for r in rows if r.saving_status == SLOWER]
    if slower:
        text += f"; slower in {_names(slower)}"
    same = [r for r in rows if r.saving_status == SAME]
    if same:
        text += f"; no difference beyond the noise in {_names(same)}"
    few = [r for r in rows if r.saving_status == TOO_FEW]
    if few:
        text += (f"; no interval in {_names(few)} (fewer than {MIN_PAIRS} pairs of rounds, so no saving is "
                 "claimed)")
    return text + "."


def _merge_sentences(study: Study, rows: list[VerdictRow]) -> list[str]:
    if not _measured(rows, study.baseline):
        return [_cannot(study, "what the PR saves", study.baseline)]
    if not _measured(rows, study.merged):
        return [_cannot(study, "what the PR saves", study.merged)]
    if not any(r.has_samples for r in rows):
        return ["Cannot answer what the PR saves: the records hold no per-round samples (samples_ms), so no "
                "paired difference can be formed."]
    hot = [r for r in rows if not r.guard_branch]
    guard = [r for r in rows if r.guard_branch]
    out = [saving_sentence(study, hot, "Hot path (batches with response tokens)")]
    if guard:
        out.append(saving_sentence(study, guard, "Guard branch (no causal tokens)"))
    first = [r.first_vs_merged for r in rows if r.first_vs_merged is not None]
    if first and study.first_commit:
        c = counts(first)
        out.append(f"{study.first_commit} ({study.describe(study.first_commit)}) against {study.merged}: "
                   f"{c[SLOWER]} faster, {c[FASTER]} slower, {c[SAME]} same.")
    return out


def _ours_sentence(study: Study, rows: list[VerdictRow]) -> list[str]:
    if not study.ours:
        return []
    if not _measured(rows, study.ours) or not _measured(rows, study.merged):
        missing = study.ours if not _measured(rows, study.ours) else study.merged
        return [_cannot(study, f"what {study.ours} saves beyond the PR", missing)]
    pairs = [(r, r.ours_beyond) for r in rows if r.ours_beyond is not None]
    if not pairs:
        return [f"Cannot answer what {study.ours} saves beyond the PR: no configuration has per-round samples of "
                f"both it and {study.merged}."]
    c = counts(d for _, d in pairs)
    faster = [(r, d) for r, d in pairs if d.status() == FASTER]
    text = f"{study.ours} ({study.label(study.ours)}) against {study.merged}: {counts_text(c)}"
    if faster:
        pct = [100 * d.stat.median / r.backward[study.merged]["median"] for r, d in faster]
        text += (f"; it saves a further {_range([d.stat.median for _, d in faster])} ({_pct_range(pct)} of "
                 f"{study.merged}'s backward) in {len(faster)} of {len(pairs)} configurations")
    slower = [(r, d) for r, d in pairs if d.status() == SLOWER]
    if slower:
        text += "; it is slower in " + ", ".join(f"{r.label} (by {fmt_interval(_neg(d.stat))} ms)"
                                                 for r, d in slower)
    return [text + "."]


def _neg(s: Stat) -> Stat:
    return Stat(-s.median, -s.hi, -s.lo, s.n)


def guard_cost_sentence(study: Study, rows: list[VerdictRow]) -> str:
    if not study.unguarded:
        return "The study names no unguarded variant, so the guard's own cost is not answered."
    costs = [(r, r.guard_cost) for r in rows if r.guard_cost is not None]
    if not costs:
        why = ("it has no ok record here (it crashes where the guard matters, or was not measured)"
               if not _measured(rows, study.unguarded) else "its records hold no per-round samples")
        return f"Cannot answer what the guard itself costs ({study.merged} - {study.unguarded}): {why}."
    c = counts((d for _, d in costs), positive=SLOWER)
    with_stat = [d.stat.median for _, d in costs if d.stat is not None]
    text = (f"The guard itself ({study.merged} - {study.unguarded}, paired, in the {len(costs)} configurations "
            f"where {study.unguarded} runs): {study.merged} is {counts_text(c)}")
    if with_stat:
        text += f"; medians {_range(with_stat)}"
    return text + "."


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


def _settled_sentences(rows: list[VerdictRow]) -> list[str]:
    with_delta = [r for r in rows if r.saving is not None]
    if not with_delta:
        return []
    out = []
    loose = [r for r in with_delta if not r.converged]
    if loose:
        out.append("Not settled (95% CI wider than +-" f"{CONVERGED_REL_CI:.0%} of the delta): " + ", ".join(
            f"{r.label} (+-{r.saving.rel_ci:.0%})" for r in loose)
                   + " (`prefixbench sweep --suite pr_delta` runs the pair alone until its delta settles).")
    else:
        out.append(f"Every PR delta settled (95% CI within +-{CONVERGED_REL_CI:.0%} of itself).")
    widened = [r for r in with_delta if r.saving_delta.widening >= DRIFT_NOTE_RATIO and not r.saving_delta.runs]
    if widened:
        out.append("Widened by drift along the run (the spread between blocks of rounds makes the interval "
                   f"{DRIFT_NOTE_RATIO}x or more as wide as the order-statistic one): "
                   + ", ".join(f"{r.label} (x{r.saving_delta.widening:.1f})" for r in widened) + ".")
    multi = [r for r in with_delta if r.other_runs]
    if multi:
        disagree = [r for r in multi if r.saving_delta.runs]
        sources = sorted({r.saving_source for r in multi})
        text = (f"{len(multi)} configurations were measured by several runs; the settled one gives each delta "
                f"({', '.join(sources)}).")
        if disagree:
            text += " Their intervals do not overlap in " + ", ".join(
                f"{r.label} ({r.saving_source} {fmt_interval(r.run_delta.stat)} vs "
                + ", ".join(f"{n} {fmt_interval(d.stat)}" for n, d in r.other_runs if n in r.saving_delta.runs)
                + ")" for r in disagree) + (": something moved between those runs that neither run's rounds "
                                            "saw, so the row's interval spans them and the row is not settled.")
        else:
            text += " The runs agree within their intervals."
        out.append(text)
    return out


def _model_sentence(rows: list[VerdictRow]) -> list[str]:
    pairs = [(r.saving.median, r.predicted[0]) for r in rows
             if r.saving is not None and r.predicted is not None and r.predicted[0] and not r.guard_branch]
    if not pairs:
        return []
    ratios = [m / p for m, p in pairs]
    within = sum(abs(x - 1) <= 0.2 for x in ratios)
    return [f"The byte model predicts the hot-path saving within 20% in {within} of {len(pairs)} configurations "
            f"(measured / predicted {min(ratios):.2f} to {max(ratios):.2f})."]


def step_sentence(study: Study, rows: list[VerdictRow], layers: int) -> str:
    steps = [r.step for r in rows if r.step is not None]
    if not steps:
        return (f"Per training step of a {layers}-layer model: not answered, no run here measured the transformer "
                f"block ({BLOCK_PREFIX}{study.merged}; `prefixbench sweep --suite scaling` does).")
    parts = []
    for s in steps:
        m = s.ms(s.measured)
        d = s.ms(s.derived)
        text = f"{_tokens_label(s.tokens)}: "
        text += (f"measured {fmt_interval(m)} ms ({s.measured.status()})" if m is not None
                 else "measured -")
        if d is not None:
            text += f", derived {fmt_interval(d)} ms = {s.pct(s.derived):.2f}% of the step"
        parts.append(text)
    return (f"Per training step of {layers} layers ({steps[0].label.split()[0]}, GPU time): " + "; ".join(parts)
            + ". Derived = the attention delta over the block step of the same run.")


def _smallest(rows: list[dict]) -> dict:
    return min(rows, key=lambda v: (sum(v.get("prefix_lens") or []) + sum(v.get("causal_lens") or []),
                                    len(v.get("prefix_lens") or []), v["pattern"]))


def _role_of(study: Study, name: str) -> str:
    roles = {study.merged: "the PR as merged", study.first_commit: "the PR's first commit",
             study.baseline: "the baseline", study.ours: "ours", study.unguarded: "unguarded baseline"}
    return roles.get(name, "other")


def crash_rows(study: Study, validation: list[dict]) -> list[CrashRow]:
    """Per validated variant, merged first, then the first commit, the baseline, ours, the unguarded one."""
    by_variant: dict[str, list[dict]] = {}
    for v in validation:
        by_variant.setdefault(v["variant"], []).append(v)
    order_names = [study.merged, study.first_commit, study.baseline, study.ours, study.unguarded]
    order = [n for n in order_names if n and n in by_variant] + sorted(n for n in by_variant if n not in order_names)
    out = []
    for name in order:
        rows = by_variant[name]
        failing = [v for v in rows if v["outcome"] != "ok"]
        shared = ""
        if failing and all(sum(v.get("prefix_lens") or [1]) == 0 for v in failing):
            shared = "every one a batch with no prefix tokens"
        elif failing and all(sum(v.get("causal_lens") or [1]) == 0 for v in failing):
            shared = "every one a batch with no causal tokens"
        out.append(CrashRow(name, _role_of(study, name), len({v["pattern"] for v in rows}),
                            sorted({v["pattern"] for v in failing}), sorted({v["outcome"] for v in failing}),
                            shared, _smallest(failing) if failing else None))
    return out


def crash_notes(study: Study, validation: list[dict], measured: Iterable[str] = ()) -> list[str]:
    out = []
    present = {v["variant"] for v in validation}
    missing = [n for n in measured if n not in present]
    if missing:
        out.append(f"Not in the validation rows, so their crashes are not answered here: {', '.join(missing)}.")
    if study.unguarded and validation and study.unguarded not in present:
        out.append(f"{study.unguarded} was not validated, so what the guard fixed is not shown "
                   "(`prefixbench review` validates it).")
    if any(v.get("backend") == "reference" for v in validation):
        out.append("The validation rows come from the reference backend, which mirrors the kernel's empty-pass "
                   "crash by design; confirm the crashes with a kernel backend on a GPU.")
    return out


def crash_sentences(validation: list[dict], measured: Iterable[str] = (), study: Optional[Study] = None) -> list[str]:
    """Per variant: which batch patterns fail it, what they share, and the smallest lengths that reproduce it."""
    study = study or load_study()
    if not validation:
        return ["No validation rows: which batch patterns crash each variant is not answered here "
                "(run `prefixbench validate`)."]
    out = crash_notes(study, validation, measured)
    groups: dict[tuple, list[CrashRow]] = {}         # variants failing the same patterns share one sentence
    for c in crash_rows(study, validation):
        groups.setdefault((c.patterns, tuple(c.failing), tuple(c.outcomes)), []).append(c)
    for (n_patterns, bad, outcomes), rows in groups.items():
        names = [c.variant for c in rows]
        who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        if not bad:
            out.append(f"{who} {'passes' if len(names) == 1 else 'pass'} all {n_patterns} batch patterns.")
            continue
        small = rows[0].smallest or {}
        shared = f", {rows[0].shared}" if rows[0].shared else ""
        out.append(f"{who} {'fails' if len(names) == 1 else 'fail'} ({'/'.join(outcomes)}) on {len(bad)} of "
                   f"{n_patterns} batch patterns{shared}: {', '.join(bad)}; smallest reproducer: prefix_lens "
                   f"{small.get('prefix_lens')}, causal_lens {small.get('causal_lens')}.")
    return out


def fastest_per_config(records: list[Any], study: Study) -> list[tuple[str, str, str]]:
    """(configuration, fastest implementation by fwd+bwd median, what it needs installed) per configuration.

    Bounds (peers that compute another job, `*_bound`) and transformer blocks are not candidates."""
    groups: dict[str, list[Any]] = {}
    for r in records:
        if f.is_ok(r) and not f.name(r).startswith(BLOCK_PREFIX) and not f.name(r).endswith("_bound") \
                and not f.on_reference(r):
            groups.setdefault(f.config_id(r), []).append(r)
    out = []
    for group in groups.values():
        timed = [(m, r) for r in group if (m := _step_median(r)) is not None]
        if not timed:
            continue
        _, best = min(timed, key=lambda t: t[0])
        name = f.name(best)
        backend = f.backend(best) or "the op's backend"
        needs = study.needs.get(name, f"nothing beyond {backend}")
        out.append((f"{f.distribution(best)} {_tokens_label(f.tokens(best))}", name, needs))
    return out


def _grouped(labels: list[str]) -> str:
    """'sft_long_prompt 16k/64k, uniform 16k': configuration labels grouped by distribution."""
    groups: dict[str, list[str]] = {}
    for label in labels:
        dist, _, tokens = label.rpartition(" ")
        groups.setdefault(dist or label, []).append(tokens)
    return ", ".join(f"{d} {'/'.join(t)}" for d, t in groups.items())


def fastest_sentence(fastest: list[tuple[str, str, str]]) -> str:
    if not fastest:
        return "Anything faster: not answered (no GPU timings of the implementations)."
    by_impl: dict[str, list[str]] = {}
    needs: dict[str, str] = {}
    for cfg, name, need in fastest:
        by_impl.setdefault(name, []).append(cfg)
        needs[name] = need
    parts = [f"{name} in {len(cfgs)} of {len(fastest)} (needs {needs[name]})"
             + ("" if len(cfgs) == len(fastest) else f": {_grouped(cfgs)}")
             for name, cfgs in sorted(by_impl.items(), key=lambda kv: -len(kv[1]))]
    return "Anything faster (fwd+bwd, fastest per configuration): " + "; ".join(parts) + "."


def build_verdict(records: Iterable[Any], validation: Optional[list[dict]] = None, study: Optional[Study] = None,
                  runs: Optional[Runs] = None, layers: int = DEFAULT_LAYERS) -> Verdict:
    """Rows and sentences from records (+ validation rows); nothing here is written by hand per run.

    `runs`: every run's records per configuration (`plots.records.RunData.runs`), so the settled one of
    several runs of a configuration gives its delta; `layers`: the stated model's depth for the
    per-step answer."""
    study = study or load_study()
    # the first backend's records (the others: plots.backends)
    records = [r for r in records if split_backend(r["variant"] if isinstance(r, dict) else r.variant)[1] is None]
    runs = {c: [(name, {k: v for k, v in recs.items() if split_backend(k)[1] is None}) for name, recs in rs]
            for c, rs in runs.items()} if runs else runs
    rows = verdict_rows(records, study, runs, layers)
    present = {n for r in rows for n in r.status}
    ordered = [n for n in study.variants if n in present and n != study.unguarded]
    variants = ordered + sorted(n for n in present if n not in study.variants) + (
        [study.unguarded] if study.unguarded in present else [])
    sentences, speed_rows = _backend_sentences(rows)
    if speed_rows:
        sentences += _merge_sentences(study, speed_rows)
        sentences += _ours_sentence(study, speed_rows)
        sentences.append(guard_cost_sentence(study, speed_rows))
        sentences.append(step_sentence(study, speed_rows, layers))
    sentences += _guard_branch_sentence(rows)
    sentences += crash_sentences(validation or [], [n for n in variants if n in study.variants], study)
    if speed_rows:
        sentences += _settled_sentences(speed_rows) + _model_sentence(speed_rows)
    crashed = [(r, n) for r in rows for n, s in r.status.items() if s != "ok" and n != study.unguarded]
    if crashed:
        sentences.append("In the sweep itself " + ", ".join(f"{n} {r.status[n]} on {r.label}" for r, n in crashed)
                         + ".")
    fastest = fastest_per_config(records, study)
    if speed_rows:
        sentences.append(fastest_sentence(fastest))
    origins = {n: study.describe(n) for n in variants}
    return Verdict(rows, variants, sentences, origins, study, layers, crash_rows(study, validation or []),
                   crash_notes(study, validation or [], [n for n in variants if n in study.variants]), fastest)


# ---- rendering -------------------------------------------------------------------------------------

def _bwd_cell(row: VerdictRow, name: str) -> str:
    s = row.backward.get(name)
    if s is not None:
        return f"{s['median']:.3f}"
    return row.status.get(name, "-")


def _settled_cell(row: VerdictRow) -> str:
    if row.saving_delta is None:
        return "-"
    if row.saving is None:
        return f"no ({row.saving_delta.pairs} pairs)"
    if row.saving_delta.runs:
        return f"no (runs disagree, +-{row.saving.rel_ci:.0%})"
    return "yes" if row.converged else f"no (+-{row.saving.rel_ci:.0%})"


def table_caption(study: Study) -> str:
    return (f"All times in ms. Backward medians per variant. PR saving = {study.baseline} - {study.merged}, "
            f"paired over pairs of rounds of the run named under 'run', and as % of {study.baseline}'s backward; "
            f"the medians do not subtract to it (a paired statistic). status: faster / slower where the 95% CI excludes zero, same "
            f"where it contains zero; below {MIN_PAIRS} pairs no interval. byte model = the saving its byte counts "
            f"predict; settled = its 95% CI within +-{CONVERGED_REL_CI:.0%} of itself; guard cost = {study.merged} "
            f"- {study.unguarded}; ours beyond PR = {study.merged} - {study.ours}.")


def table(verdict: Verdict) -> tuple[list[str], list[list[str]]]:
    """Headers and string rows of the verdict table (markdown / HTML)."""
    headers = (["configuration", "guard branch"] + list(verdict.variants)
               + ["PR saving [95% CI]", "% of bwd", "run", "byte model", "settled", "guard cost",
                  "ours beyond PR"])
    rows = []
    for r in verdict.rows:
        model = "-" if r.predicted is None else _ms(r.predicted[0])
        rows.append([r.label + (" (reference)" if r.reference else ""),
                     "-" if r.guard_branch is None else ("taken" if r.guard_branch else "no")]
                    + [_bwd_cell(r, n) for n in verdict.variants]
                    + [cell(r.saving_delta), "-" if r.saving_pct is None else f"{r.saving_pct:.1f}%",
                       r.saving_source or "-", model, _settled_cell(r), cell(r.guard_cost, SLOWER),
                       cell(r.ours_beyond)])
    return headers, rows


def mapping_line(verdict: Verdict) -> str:
    """Which variant is which commit, in one line (the study's variants only)."""
    return "; ".join(f"{verdict.study.label(n)} = {n}: {o}" for n, o in verdict.origins.items()
                     if n in verdict.study.variants) + "."


def blocks(verdict: Verdict, title: str = "Verdict") -> list[tuple]:
    """Blocks for plots.render (Markdown and HTML share them)."""
    headers, rows = table(verdict)
    return [("h", 2, title), ("ul", verdict.sentences), ("p", table_caption(verdict.study)),
            ("table", headers, rows),
            ("table", ["variant", "what it is"], [[n, o] for n, o in verdict.origins.items()])]


def to_markdown(verdict: Verdict) -> str:
    from plots.render import to_markdown as render
    return render(blocks(verdict), Path("."))


def to_terminal(verdict: Verdict) -> str:
    """A plain-text block for the end of a sweep: medians only, short columns, then the sentences."""
    study = verdict.study
    names = [study.label(n) for n in verdict.variants]
    headers = ["configuration", "branch"] + [f"{s} ms" for s in names] + ["PR saving ms [95% CI]", "%", "model ms",
                                                                          "settled"]
    body = []
    for r in verdict.rows:
        body.append([r.label + (" (ref)" if r.reference else ""),
                     "-" if r.guard_branch is None else ("taken" if r.guard_branch else "no")]
                    + [_bwd_cell(r, n) for n in verdict.variants]
                    + [cell(r.saving_delta), "-" if r.saving_pct is None else f"{r.saving_pct:.1f}",
                       "-" if r.predicted is None else _ms(r.predicted[0]), _settled_cell(r)])
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *body)]
    line = lambda cells: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    out = ["Verdict (backward ms, medians)", line(headers), line(["-" * w for w in widths])]
    out += [line(row) for row in body]
    out.append("")
    out += [f"{study.label(n)} = {n}: {o}" for n, o in verdict.origins.items()]
    out.append("")
    out += [f"* {s}" for s in verdict.sentences]
    return "\n".join(out) + "\n"
