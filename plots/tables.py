"""Tables and text the report and the terminal share: the pivot table, results.csv, the glossary, the peak check.

The pivot puts configurations down and implementations across (backward and forward ms with their
95% intervals) so one table replaces a block per configuration. `results.csv` holds one flat row per
record (dotted keys) for spreadsheets; the raw per-round samples stay in results.jsonl.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from bench.results.io import SKIPPED_CSV_KEYS as SKIPPED_KEYS  # noqa: F401 - results.csv is written by every sweep,
from bench.results.io import flatten_record, write_results_csv  # noqa: F401 - so it lives in bench.results.io
from plots import fields as f
from bench.spec.names import variants_first

METRICS = ("backward", "forward")


UNSETTLED = "*"
UNSETTLED_NOTE = ("* = the configuration stopped at its time or round cap before every interval reached the "
                  "target (record `converged: false`).")


@dataclass(frozen=True)
class Cell:
    """One implementation's median and interval in one configuration, or why there is none."""
    median: Optional[float] = None
    lo: Optional[float] = None
    hi: Optional[float] = None
    status: str = "-"
    converged: bool = True       # False: the configuration stopped at a cap before its intervals reached the target

    def full(self) -> str:
        """'2.683 [2.677, 2.697]' (markdown / HTML), '*' after it when not converged."""
        if self.median is None:
            return self.status
        from bench.results.stats import Stat
        from plots.deltas import fmt_interval
        text = fmt_interval(Stat(self.median, self.lo, self.hi, 0))      # digits to the interval's precision
        return f"{text}{UNSETTLED if not self.converged else ''}"

    def compact(self) -> str:
        """'2.683 +-0.4%' (terminal): the half-width of the interval over the median, '*' when not converged."""
        if self.median is None:
            return self.status
        half = (self.hi - self.lo) / 2 / abs(self.median) if self.median else 0.0
        return f"{self.median:.4g} +-{100 * half:.1f}%{UNSETTLED if not self.converged else ''}"


@dataclass
class Pivot:
    implementations: list[str]
    rows: list[tuple[str, str, list[Cell]]]       # (configuration label, metric, one cell per implementation)


def _label(rec: Any, vary: set[str]) -> str:
    heads, head_dim, dtype = f.shape(rec)
    t = f.tokens(rec)
    parts = [f.distribution(rec), f"{t // 1024}k" if t >= 1024 and t % 1024 == 0 else str(t)]
    if "shape" in vary:
        parts.append(f"h{heads}xd{head_dim}")
    if "dtype" in vary:
        parts.append(str(dtype))
    return " ".join(parts)


def pivot(records: Iterable[Any], metrics: tuple[str, ...] = METRICS) -> Pivot:
    """Configurations (in first-seen order) x implementations (variants in registry order, then peers)."""
    records = list(records)
    groups: dict[str, list[Any]] = {}
    for rec in records:
        groups.setdefault(f.config_id(rec), []).append(rec)
    seen = list(dict.fromkeys(f.name(r) for r in records))
    variants = [n for n in seen if f.kind(next(r for r in records if f.name(r) == n)) == "variant"]
    names = variants_first(variants)
    names += [n for n in seen if n not in names]
    vary = set()
    if len({f.shape(r)[:2] for r in records}) > 1:
        vary.add("shape")
    if len({f.shape(r)[2] for r in records}) > 1:
        vary.add("dtype")
    labels = [_label(g[0], vary) for g in groups.values()]
    if len(set(labels)) < len(labels):
        labels = list(groups)                 # something else differs (seed, context): config ids are unique
    rows = []
    for label, group in zip(labels, groups.values()):
        by_name = {f.name(r): r for r in group}
        for metric in metrics:
            cells = []
            for n in names:
                rec = by_name.get(n)
                s = f.stat(rec, metric) if rec is not None and f.is_ok(rec) else None
                if s is None:
                    cells.append(Cell(status="-" if rec is None else f.status(rec)))
                else:
                    settled = f.as_record(rec).converged is not False
                    cells.append(Cell(s["median"], s["lo"], s["hi"], "ok", settled))
            rows.append((label, metric, cells))
    return Pivot(names, rows)


def pivot_table(p: Pivot) -> tuple[list[str], list[list[str]]]:
    """Headers and rows for markdown / HTML: 'median [lo, hi]' ms."""
    headers = ["configuration", "ms"] + p.implementations
    return headers, [[label, metric] + [c.full() for c in cells] for label, metric, cells in p.rows]


def pivot_terminal(p: Pivot) -> str:
    """Fixed-width text: one line per configuration and metric, 'median +-half%' cells, nothing wraps ids."""
    headers = ["configuration", "ms"] + p.implementations
    body, previous = [], None
    for label, metric, cells in p.rows:
        body.append([label if label != previous else "", metric] + [c.compact() for c in cells])
        previous = label
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *body)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in body]) + "\n"


# ---- glossary --------------------------------------------------------------------------------------

GLOSSARY: dict[str, str] = {
    "backward / forward ms": "Median wall time of one call of the op's backward (or forward) on the GPU, from CUDA "
                             "events around each call; in brackets the 95% interval of the median.",
    "95% CI / interval": "Distribution-free 95% confidence interval of a median, from order statistics of the "
                         "samples (no assumption about the shape of the timing distribution).",
    "round": "One pass in which every implementation of a configuration runs once; round r rotates the order by "
             "r // 2 and reverses it when r is odd, so every pair runs in both orders. Samples "
             "with the same round index are paired.",
    "paired difference": "Median of (A's sample - B's sample) in the same round, averaged over rounds 2k and "
                         "2k+1 (which ran A and B in opposite orders), with its 95% interval: drift that moves a "
                         "whole round (clocks, power cap) cancels, and so does a call's place inside a round.",
    "PR saving": "The guard PR's own number: paired difference zeros_always - guarded_passthrough of the "
                 "backward, in ms and as % of zeros_always's backward.",
    "guard cost": "What the guard itself costs: paired difference guarded_passthrough - unguarded, where "
                  "unguarded runs at all.",
    "guard branch": "The branch the PR adds: taken only when no sequence of the batch has causal tokens; the "
                    "causal pass is then skipped.",
    "extra vs best": "A variant's paired backward difference against the fastest variant of the same "
                     "configuration (0 for the fastest).",
    "best variant": "The variant with the lowest backward median in a configuration.",
    "byte model": "Each variant's bytes allocated, zero-filled and added in one backward, counted from the "
                  "batch's lengths (not measured).",
    "predicted extra": "A byte-count difference turned into ms at the fill and add bandwidth measured by a "
                       "probe in the same run.",
    "zero-fill floor": "The time the recorded zero-filled bytes take at the measured fill bandwidth: the least "
                       "a variant that zero-fills must pay for it.",
    "fill / add bandwidth": "GB/s of K/V-sized zero-fill and add kernels timed by the bandwidth probe in the same "
                            "run.",
    "phase events": "CUDA events around named phases inside the op (bwd.zero_fill, bwd.causal_pass, ...), "
                    "timed in separate rounds so they do not perturb the main timings.",
    "outside phases": "Time inside the op's call that no named phase covers (launch gaps, Python, allocator).",
    "converged": "A median (or the PR's delta) whose 95% interval is within the target of itself: +-5% for the "
                 "PR delta; the record's stop_reason says whether the stopping rule got there.",
    "stop reason": "Why timing stopped: converged, max_reps (round cap) or time_cap (time cap per "
                   "configuration).",
    "GPU time": "Time between CUDA events on the stream with each call enqueued behind a stream hold (a kernel "
                "spinning on a host flag), so the events see GPU work only, not the host's launch pace; the "
                "default timing mode on CUDA and the number for what a kernel or a memset costs.",
    "timing mode": "The clock a record's forward/backward, extra vs best, prediction and PR saving use "
                   "(`timing_mode`: gpu or eager); the other clocks of the same rounds are kept beside it.",
    "eager": "Each call launched from Python from an idle queue, kernel by kernel, as in an uncompiled training "
             "step: GPU time plus the host launch time the GPU waits for.",
    "graph": "The forward and backward captured once as CUDA graphs and replayed, in the same interleaved rounds "
             "as the other clocks: launch overhead mostly removed.",
    "host overhead": "Eager minus GPU time of one implementation, paired by round, with its 95% interval: what "
                     "launching the call costs (Python, dispatcher, allocator, launches the GPU waits for).",
    "amortized": "GPU time of a call that synchronizes inside its enqueue (the stream hold times out): 8 calls "
                 "back to back between two events, divided by 8; the record's gpu_method says so.",
    "ideal": "A bound no implementation can beat on this batch (a peer doing less work, or the zero-fill "
             "floor), shown for scale.",
    "TF/s": "Tera floating-point operations per second: 4 (forward) or 10 (backward) FLOPs per attended "
            "(query, key) pair per head-dim element over the median time; values above the GPU's dense bf16 "
            "peak are flagged, not shown as throughput.",
    "TFLOP/s": "Same as TF/s.",
    "effective TFLOP/s": "TF/s on the PrefixLM pair count for an implementation that computes more or fewer "
                         "pairs (a bound, dense SDPA): the rate at which it does this job, not its own work rate.",
    "PrefixLM pairs / own pairs": "TF/s on the workload's PrefixLM pair count (time to do this job) or on the "
                                  "pairs the implementation itself computes.",
    "peer": "Another way to compute the same attention (FlexAttention, SDPA, one FA3 pass as a bound).",
    "variant": "One way of handling the backward's second dK/dV buffers; see the variant table.",
    "crashed (expected)": "A validation pattern the variant is documented to fail on (FA3's CUTLASS error on an "
                          "empty pass), kept as a finding, not hidden.",
    "wrong / unwritten": "Validation outcomes: a result outside tolerance of the dense float64 reference, or "
                         "gradient rows left holding the poison the buffers were filled with.",
    "transformer block": "The op inside a pre-norm block (RMSNorm, QKV and output projections, SwiGLU MLP), "
                         "timed forward+backward to put the saving in a training step's terms.",
}


# ---- peak check ------------------------------------------------------------------------------------

# Dense (no sparsity) bf16/fp16 tensor-core peaks from NVIDIA's datasheets, TF/s.
PEAK_DENSE_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    (r"H100.*(PCIe)", 756.0),
    (r"H100.*NVL", 835.0),
    (r"H100|H200|H800|GH200", 989.4),      # SXM parts; "NVIDIA H100 80GB HBM3" is the SXM board
)


def peak_tflops(device_name: Optional[str]) -> Optional[float]:
    """The GPU's dense bf16 peak in TF/s, or None when the name is not known."""
    for pattern, peak in PEAK_DENSE_BF16_TFLOPS:
        if device_name and re.search(pattern, device_name):
            return peak
    return None


def exceeds_peak(tflops: Optional[float], device_name: Optional[str]) -> bool:
    """True when a TF/s value is above what the GPU can do (the count or the timing is off, not the GPU)."""
    peak = peak_tflops(device_name)
    return tflops is not None and peak is not None and tflops > peak


def tflops_cell(tflops: Optional[float], device_name: Optional[str]) -> str:
    """A TF/s value for a table, or a flag in place of it when it exceeds the peak."""
    if tflops is None:
        return "-"
    if exceeds_peak(tflops, device_name):
        return f"{tflops:.0f} (above the {peak_tflops(device_name):.0f} TF/s peak: not throughput)"
    return f"{tflops:.1f}"
