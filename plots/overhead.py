"""The report's clocks block: host overhead per implementation and configuration, and which clock says what.

GPU time (the `gpu` clock, stream held) answers what a kernel or a memset costs; host overhead
(eager - gpu, paired by round) answers what launching the call costs; eager is what an uncompiled
training step sees, the sum of both where the GPU waits. The PR's delta is shown on both clocks so
a reader sees whether they agree. Nothing is recomputed but paired medians of recorded samples.
"""
from __future__ import annotations

from typing import Iterable, Optional

from bench.results.derived import paired_difference
from bench.results.records import Record
from bench.results.stats import Stat
from plots.render import Block
from bench.spec.names import variants_first

PR_BEFORE, PR_AFTER = "zeros_always", "guarded_passthrough"

CLOCKS_TEXT = ("Which number each statement uses. Headline times, extra vs best, predictions and the PR saving "
               "use the records' timing mode (`timing_mode`): GPU time on CUDA by default (each call enqueued "
               "behind a stream hold, so the events see GPU work only), the figure for what a kernel or a memset "
               "costs. Host overhead = eager - GPU time, paired by round, is what launching the call costs "
               "(Python, dispatcher, allocator, kernel launches the GPU waits for); an eager training step pays "
               "both. Graph replays (with --cuda-graph) drop most of the launch cost.")


def _cell(s: Optional[Stat]) -> str:
    return "-" if s is None else f"{s.median:.3f} [{s.lo:.3f}, {s.hi:.3f}]"


def _label(rec: Record) -> str:
    t = rec.tokens
    return f"{rec.distribution} {t // 1024}k" if t >= 1024 and t % 1024 == 0 else f"{rec.distribution} {t}"


def _ordered_names(records: list[Record]) -> list[str]:
    seen = list(dict.fromkeys(r.variant for r in records))
    return variants_first(seen)


def pr_delta_on_both_clocks(before: Record, after: Record) -> Optional[tuple[Stat, Stat, Stat]]:
    """The PR delta on the mode's clock and on eager, and their paired difference (mode - eager), all
    paired as `bench.results.derived.paired_difference`. The two clocks agree when the interval of their
    difference holds zero."""
    sa, sb = before.samples_ms or {}, after.samples_ms or {}
    series = [sa.get("backward"), sb.get("backward"), sa.get("eager_backward"), sb.get("eager_backward")]
    if not all(series) or len({len(x) for x in series}) != 1:
        return None
    a, b, a_eager, b_eager = series
    mode = [x - y for x, y in zip(a, b)]
    eager = [x - y for x, y in zip(a_eager, b_eager)]
    return paired_difference(a, b), paired_difference(a_eager, b_eager), paired_difference(mode, eager)


def host_overhead_blocks(records: Iterable[Record]) -> list[Block]:
    """Heading, which-number text, host overhead (fwd+bwd) per configuration x implementation, and the
    PR delta on the gpu and eager clocks; a sentence saying why where no record has both clocks."""
    ok = [r for r in records if r.ok]
    blocks: list[Block] = [("h", 2, "Clocks and host overhead"), ("p", CLOCKS_TEXT)]
    timed = [r for r in ok if r.host_overhead_ms]
    if not timed:
        notes = sorted({r.timing_note for r in ok if r.timing_note})
        modes = sorted({r.timing_mode or "eager (records without timing_mode)" for r in ok})
        why = f" ({'; '.join(notes)})" if notes else ""
        return blocks + [("p", f"No host overhead in these records: timed {', '.join(modes) or '-'} only{why}.")]
    names = _ordered_names(timed)
    groups: dict[str, dict[str, Record]] = {}
    for r in timed:
        groups.setdefault(r.config_id, {})[r.variant] = r
    rows = []
    for group in groups.values():
        first = next(iter(group.values()))
        rows.append([_label(first)] + [_cell((group[n].host_overhead_ms or {}).get("fwd_bwd")) if n in group
                                       else "-" for n in names])
    blocks += [("p", "Host overhead, forward + backward, ms: median of per-round eager - GPU time [95% interval]."),
               ("table", ["configuration"] + names, rows)]
    amortized = sorted(f"{r.config_id} / {r.variant}" for r in timed if r.gpu_method == "amortized")
    if amortized:
        blocks.append(("p", "GPU time measured amortized (the call synchronizes inside its enqueue): "
                            + ", ".join(amortized) + "."))
    pr_rows = []
    for group in groups.values():
        if PR_BEFORE in group and PR_AFTER in group:
            both = pr_delta_on_both_clocks(group[PR_BEFORE], group[PR_AFTER])
            if both is None:
                continue
            gpu, eager, diff = both
            agree = "yes" if diff.lo <= 0.0 <= diff.hi else "no"
            pr_rows.append([_label(group[PR_BEFORE]), _cell(gpu), _cell(eager), _cell(diff), agree])
    if pr_rows:
        agreed = sum(row[-1] == "yes" for row in pr_rows)
        blocks += [("p", f"PR delta ({PR_BEFORE} - {PR_AFTER}, backward, paired over pairs of rounds run in "
                         "opposite orders) on both clocks. A launch cost both variants pay cancels in each delta, "
                         f"but {PR_BEFORE} also allocates and fills two more K/V-sized buffers: where the GPU waits "
                         "for the host (small batches, a host hiccup), eager adds that host work to the delta. The "
                         "GPU-time delta is what the fill costs the GPU; eager - GPU time is its host cost where "
                         "exposed. The clocks agree where the 95% interval of their paired difference "
                         f"(GPU time - eager) holds zero: {agreed} of {len(pr_rows)} configurations."),
                   ("table", ["configuration", "GPU time ms", "eager ms", "GPU time - eager ms", "agree"], pr_rows)]
    return blocks
