"""The report's first screen: four answers side by side, readable without scrolling at 1400x900.

1. what the PR saves per attention backward, the hot path (batches with response tokens) apart from
   the guard branch (no causal tokens), each delta with its status and the run that settled it;
2. what the guard itself costs; 3. what that is per training step of a stated model; 4. which batch
   patterns crash each of the PR's variants, the merged one first, beside the unguarded baseline.
"Anything faster" follows: the fastest implementation per configuration and what it needs installed.
"""
from __future__ import annotations

from typing import Optional

from plots.deltas import FASTER, SLOWER, Delta, cell, counts, counts_text, fmt_interval
from plots.verdict import (MIN_PAIRS, StepRow, Verdict, VerdictRow, fastest_sentence, guard_cost_sentence,
                           mapping_line)

Block = tuple


def _saving_rows(rows: list[VerdictRow]) -> list[list[str]]:
    out = []
    for r in rows:
        d = r.saving_delta
        if d is None:
            out.append([r.label, "-", "-", "not measured", "-"])
            continue
        if d.stat is None:
            out.append([r.label, "-", "-", f"no interval: {d.pairs} pairs < {MIN_PAIRS}", r.saving_source or "-"])
            continue
        pct = "-" if r.saving_pct is None or d.status() != FASTER else f"{r.saving_pct:.1f}"
        settled = "" if r.converged else f", +-{d.stat.rel_ci:.0%}"
        settled += "*" if d.runs else ""
        out.append([r.label, fmt_interval(d.stat), pct, d.status() + settled, r.saving_source or "-"])
    return out


def saving_blocks(verdict: Verdict) -> list[Block]:
    """Answer 1: the hot-path rows, then the guard-branch rows, each with a count of statuses."""
    s = verdict.study
    headers = ["configuration", "saving ms [95% CI]", "% of bwd", "status", "run"]
    out: list[Block] = [("h", 3, f"1. What {s.merged} saves per attention backward against {s.baseline}")]
    for title, rows in (("Hot path: batches with response tokens", verdict.hot_rows),
                        ("Guard branch: no causal tokens (the causal pass is skipped)", verdict.guard_rows)):
        if not rows:
            continue
        c = counts(r.saving_delta for r in rows)
        out.append(("p", f"{title}: {counts_text(c)}.", "count"))
        out.append(("table", headers, _saving_rows(rows), "compact saving"))
    if not verdict.hot_rows and not verdict.guard_rows:
        out.append(("p", verdict.sentences[0] if verdict.sentences else "no GPU timings", "small"))
    out.append(("p", "A saving is claimed only where the interval excludes zero (status faster); 'same' means "
                     "the interval contains zero. Paired over pairs of rounds of the named run, so the medians "
                     "of the tables below do not subtract to it."
                     + (" *Two runs disagree: the interval spans both."
                        if any(r.saving_delta is not None and r.saving_delta.runs for r in verdict.rows) else ""),
                "small"))
    return out


def guard_blocks(verdict: Verdict) -> list[Block]:
    """Answer 2: the guard's own cost (merged - unguarded)."""
    s = verdict.study
    rows = [r for r in verdict.rows if r.guard_cost is not None and not r.reference]
    out: list[Block] = [("h", 3, "2. What the guard itself costs"),
                        ("p", guard_cost_sentence(s, [r for r in verdict.rows if not r.reference]), "answer")]
    worst = [r for r in rows if r.guard_cost.stat is not None]
    if worst:
        top = max(worst, key=lambda r: r.guard_cost.stat.hi)
        out.append(("p", f"Largest possible cost (upper end of a 95% CI): {top.guard_cost.stat.hi:.3f} ms at "
                         f"{top.label}; {s.unguarded} does not run where the guard matters (see 4).", "small"))
    return out


def _step_cells(step: StepRow, delta: Optional[Delta], eager: bool = False) -> str:
    ms = step.ms(delta)
    if delta is None:
        return "-"
    if ms is None:
        return f"no interval ({delta.pairs} pairs)"
    pct = step.pct(delta, eager)
    return f"{fmt_interval(ms)} {delta.status()}" + ("" if pct is None else f" ({pct:.2f}%)")


def step_blocks(verdict: Verdict) -> list[Block]:
    """Answer 3: per training step of `layers` blocks, GPU time and eager, measured and derived."""
    steps = sorted(verdict.steps, key=lambda s: s.tokens)
    layers = verdict.layers
    if not steps:
        return [("h", 3, f"3. Per training step ({layers} layers)"),
                ("p", f"Not answered: no run here measured the transformer block (`prefixbench sweep --suite "
                      f"scaling` does); {layers} layers x the attention saving would ignore the rest of the step.",
                 "answer")]
    shape = f"{steps[0].heads} heads x {steps[0].head_dim}" if steps[0].heads else "the suite's shape"
    headers = ["tokens", f"step ({layers} layers)", "measured saving", "derived saving (% of step)",
               "eager derived (%)"]
    rows = [[s.label.split()[-1], f"{s.step_ms * layers:.1f}", _step_cells(s, s.measured),
             _step_cells(s, s.derived), _step_cells(s, s.eager_derived, eager=True)] for s in steps]
    sources = sorted({s.source for s in steps})
    return [("h", 3, f"3. Per training step of a {layers}-layer model ({steps[0].label.split()[0]}, {shape})"),
            ("table", headers, rows, "compact"),
            ("p", f"ms per training step, GPU time unless eager. measured = {layers} x the paired block delta "
                  f"(fwd+bwd); derived = "
                  f"{layers} x the attention backward delta, over the block step of the same run "
                  f"({', '.join(sources)}); L is set by --layers.", "small")]


def crash_blocks(verdict: Verdict) -> list[Block]:
    """Answer 4: the boundary matrix per variant, merged first, failures styled as failures."""
    out: list[Block] = [("h", 3, "4. Which batch patterns crash each variant (validation)")]
    if not verdict.crashes:
        return out + [("p", "Not answered: no validation rows (run `prefixbench validate`).", "answer")]
    rows = []
    for c in verdict.crashes:
        result = (f"FAILS {len(c.failing)} of {c.patterns}" if c.failing
                  else f"passes all {c.patterns}")
        detail = (f"{'/'.join(c.outcomes)}: " + ", ".join(c.failing) + (f"; {c.shared}" if c.shared else "")
                  if c.failing else "-")
        if c.smallest:
            detail += f"; smallest: prefix {c.smallest.get('prefix_lens')}, causal {c.smallest.get('causal_lens')}"
        rows.append([f"{c.variant} ({c.role})", result, detail])
    out.append(("table", ["variant", "result", "failing patterns"], rows, "compact"))
    out += [("p", n, "small") for n in verdict.crash_notes]
    return out


def first_screen_blocks(verdict: Verdict) -> list[Block]:
    """The four answers in a two-column grid, then what is faster still and which variant is which."""
    left = saving_blocks(verdict) + crash_blocks(verdict)
    right = guard_blocks(verdict) + step_blocks(verdict)
    if verdict.hot_rows or verdict.guard_rows:
        right.append(("p", fastest_sentence(verdict.fastest), "faster"))
    else:
        right += [("p", s, "small") for s in verdict.sentences[:1]]
    right.append(("p", mapping_line(verdict), "small"))
    return [("grid", [left, right])]


__all__ = ["first_screen_blocks", "saving_blocks", "guard_blocks", "step_blocks", "crash_blocks", "cell",
           "SLOWER"]
