"""A paired delta with its status, nvbench_compare style: faster, slower or same, never a saving in the noise.

A delta a - b is formed over pairs of rounds (`bench.results.derived.paired_difference`). Its interval is
the run's (`bench.results.stats.run_ci`): the order-statistic interval widened to the spread between
blocks of the run where the delta drifts, recomputed from the stored samples, so records written before
that widening get it too; the order-statistic interval alone is kept as `Delta.within`. Below `MIN_PAIRS`
pairs its 95% interval is little more than the range of the pairs, so it gets no interval, no status
and no saving, only the reason. Where runs of one configuration disagree beyond their intervals,
`across_runs` spans them (a run cannot see what moves between runs). Digits are trimmed to the
interval's precision, as torch's `Compare` trims to the measured significance.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from bench.results.derived import paired_difference, paired_difference_within
from bench.results.stats import Stat
from bench.spec.study import MIN_PAIRS, SETTLED_REL_CI
FASTER, SLOWER, SAME, TOO_FEW = "faster", "slower", "same", "too few pairs"
STATUSES = (FASTER, SLOWER, SAME)


@dataclass(frozen=True)
class Delta:
    """a - b over pairs of rounds; `stat` is None when there are too few pairs (see `reason`).

    `stat` is the reported interval (`run_ci`, or the span of disagreeing runs); `within` the
    order-statistic interval of the same pairs (noise between rounds only); `runs` the runs whose
    disagreement widened `stat` to span them (empty when one run gave it)."""
    stat: Optional[Stat]
    pairs: int
    reason: str = ""
    within: Optional[Stat] = None
    runs: tuple[str, ...] = ()

    @property
    def widening(self) -> float:
        """Width of the reported interval over the order-statistic one (1.0: not widened, or unknown)."""
        if self.stat is None or self.within is None or self.within.hi <= self.within.lo:
            return 1.0
        return (self.stat.hi - self.stat.lo) / (self.within.hi - self.within.lo)

    @property
    def settled(self) -> bool:
        return self.stat is not None and self.stat.rel_ci <= SETTLED_REL_CI

    def status(self, positive: str = FASTER) -> str:
        """faster / slower / same; `positive` names what a delta above zero means (a saving: faster)."""
        if self.stat is None:
            return TOO_FEW
        negative = SLOWER if positive == FASTER else FASTER
        if self.stat.lo > 0:
            return positive
        if self.stat.hi < 0:
            return negative
        return SAME

    @property
    def excludes_zero(self) -> bool:
        return self.stat is not None and (self.stat.lo > 0 or self.stat.hi < 0)


def paired(a: Optional[Sequence[float]], b: Optional[Sequence[float]], min_pairs: int = MIN_PAIRS) -> Optional[Delta]:
    """The delta a - b of two round-aligned sample lists; None without samples of both."""
    if not a or not b:
        return None
    stat = paired_difference(list(a), list(b))
    if stat.n < min_pairs:
        return Delta(None, stat.n, f"{stat.n} pairs of rounds, below the {min_pairs} an interval needs")
    return Delta(stat, stat.n, within=paired_difference_within(list(a), list(b)))


def overlap(x: Stat, y: Stat) -> bool:
    return not (x.hi < y.lo or y.hi < x.lo)


def across_runs(pick: tuple[str, Delta], others: Sequence[tuple[str, Delta]]) -> Delta:
    """The picked run's delta, its interval widened to span every run whose interval it does not overlap.

    Two runs of one configuration whose intervals do not overlap measured something the rounds of either
    could not see (docs/CLOCKS.md); the delta then lies somewhere across them, and is not settled."""
    name, d = pick
    apart = [(n, o) for n, o in others if d.stat is not None and o.stat is not None and not overlap(d.stat, o.stat)]
    if not apart:
        return d
    s = d.stat
    lo, hi = min([s.lo] + [o.stat.lo for _, o in apart]), max([s.hi] + [o.stat.hi for _, o in apart])
    return Delta(Stat(s.median, lo, hi, s.n), d.pairs, d.reason, d.within, (name, *(n for n, _ in apart)))


def decimals(stat: Stat) -> int:
    """Decimals that show the interval's width to two significant digits (0.86 wide -> 2)."""
    width = stat.hi - stat.lo
    if width <= 0 or not math.isfinite(width):
        mag = abs(stat.median) or 1.0
        return max(0, min(6, 2 - math.floor(math.log10(mag))))
    return max(0, min(6, 1 - math.floor(math.log10(width))))


def fmt_interval(stat: Optional[Stat], scale: float = 1.0) -> str:
    """'0.24 [-0.30, 0.56]' (digits to the interval's precision); '-' for none."""
    if stat is None:
        return "-"
    s = Stat(stat.median * scale, stat.lo * scale, stat.hi * scale, stat.n)
    d = decimals(s)
    return f"{s.median:.{d}f} [{s.lo:.{d}f}, {s.hi:.{d}f}]"


def fmt_value(stat: Optional[Stat], scale: float = 1.0) -> str:
    """The median alone, to the interval's precision."""
    if stat is None:
        return "-"
    return f"{stat.median * scale:.{decimals(Stat(stat.median * scale, stat.lo * scale, stat.hi * scale, stat.n))}f}"


def cell(delta: Optional[Delta], positive: str = FASTER, scale: float = 1.0) -> str:
    """'0.149 [0.139, 0.156] faster', or the reason there is none."""
    if delta is None:
        return "-"
    if delta.stat is None:
        return f"no interval ({delta.pairs} pairs)"
    return f"{fmt_interval(delta.stat, scale)} {delta.status(positive)}"


def counts(deltas: Iterable[Optional[Delta]], positive: str = FASTER) -> dict[str, int]:
    """How many are faster / slower / same (and too few pairs), nvbench_compare's summary line."""
    out = {s: 0 for s in (*STATUSES, TOO_FEW)}
    for d in deltas:
        if d is not None:
            out[d.status(positive)] += 1
    return out


def counts_text(c: dict[str, int]) -> str:
    parts = [f"{c[s]} {s}" for s in STATUSES]
    if c.get(TOO_FEW):
        parts.append(f"{c[TOO_FEW]} with too few pairs")
    return ", ".join(parts)
