"""Medians with distribution-free confidence intervals, and the stopping rule that uses them.

The interval of the median comes from order statistics (binomial ranks), so it assumes nothing
about the shape of the timing distribution (long right tails are the norm on GPUs). That interval
assumes the samples are independent draws of one distribution; a run whose delta drifts (the GPU's
clock moving under the power cap) breaks it, so a paired delta's interval is also formed from the
spread between contiguous blocks of the run (`block_ci`), and `run_ci` reports the wider of the two
(docs/CLOCKS.md, "Two runs of one configuration").
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

Z_95 = 1.959964


@dataclass(frozen=True)
class Stat:
    median: float
    lo: float
    hi: float
    n: int

    @property
    def rel_ci(self) -> float:
        """Half-width of the interval over |median| (inf when the median is 0)."""
        half = (self.hi - self.lo) / 2
        return half / abs(self.median) if self.median else (0.0 if half == 0 else math.inf)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["rel_ci"] = self.rel_ci
        return d

    @classmethod
    def from_json(cls, obj: dict) -> "Stat":
        """A stat as records store it (`rel_ci` is derived, so it is not read back)."""
        return cls(float(obj["median"]), float(obj["lo"]), float(obj["hi"]), int(obj.get("n", 0)))



def median(values: Sequence[float]) -> float:
    s = sorted(values)
    n = len(s)
    if n == 0:
        raise ValueError("median of no values")
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2


def median_ci(values: Sequence[float], z: float = Z_95) -> Stat:
    """Median and its ~95% interval: sorted values at ranks n/2 -+ z*sqrt(n)/2 (clamped)."""
    s = sorted(values)
    n = len(s)
    m = median(s)
    if n < 3:
        return Stat(m, s[0], s[-1], n)
    half = z * math.sqrt(n) / 2
    lo_rank = max(0, math.floor(n / 2 - half) - 1)
    hi_rank = min(n - 1, math.ceil(n / 2 + half))
    return Stat(m, s[lo_rank], s[hi_rank], n)


MIN_BLOCKS = 4          # fewer blocks: the spread between them says too little to widen an interval
MIN_BLOCK_PAIRS = 5     # samples per block, at least
MAX_BLOCKS = 20         # the t table's end; beyond it more blocks narrow the interval little
_T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
          2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086)   # Student t, 97.5% quantile, df 1..20


def t_975(df: int) -> float:
    """Student's t 97.5% quantile (two-sided 95%); beyond the table the normal value plus its 1/df term."""
    if df < 1:
        raise ValueError("t quantile needs df >= 1")
    if df <= len(_T_975):
        return _T_975[df - 1]
    return Z_95 + (Z_95 ** 3 + Z_95) / (4 * df)


def block_count(n: int) -> int:
    """Contiguous blocks for `n` samples: about sqrt(n) blocks of sqrt(n) (batch means' usual choice, so
    blocks grow longer and more numerous together), at least MIN_BLOCKS of at least MIN_BLOCK_PAIRS, at
    most MAX_BLOCKS; 0 when `n` is too small for that."""
    k = min(MAX_BLOCKS, math.isqrt(n), n // MIN_BLOCK_PAIRS)
    return k if k >= MIN_BLOCKS else 0


def block_medians(values: Sequence[float], k: int) -> list[float]:
    """The median of each of `k` contiguous blocks of near-equal size, in run order (every sample used)."""
    n = len(values)
    if k < 1 or k > n:
        raise ValueError(f"cannot cut {n} values into {k} blocks")
    return [median(values[i * n // k:(i + 1) * n // k]) for i in range(k)]


def block_ci(values: Sequence[float]) -> Optional[Stat]:
    """The interval the between-block spread gives: a t-interval on the medians of contiguous blocks.

    Each block is a short run of its own, so the spread of block medians holds whatever moved along the
    run (drift, clock changes) as well as the noise between rounds; `median` is still the median of all
    values. None when there are too few values for MIN_BLOCKS blocks of MIN_BLOCK_PAIRS."""
    k = block_count(len(values))
    if not k:
        return None
    meds = block_medians(values, k)
    mean = sum(meds) / k
    sd = math.sqrt(sum((m - mean) ** 2 for m in meds) / (k - 1))
    half = t_975(k - 1) * sd / math.sqrt(k)
    return Stat(median(values), mean - half, mean + half, len(values))


def run_ci(values: Sequence[float]) -> Stat:
    """A paired delta's reported interval: the hull of the order-statistic interval (`median_ci`, noise
    between rounds) and the between-block interval (`block_ci`, drift along the run).

    On independent samples the two are about equal; where the delta drifts, the block interval is the
    wider and the report's interval covers the spread a second run of the configuration would show."""
    within = median_ci(values)
    blocks = block_ci(values)
    if blocks is None:
        return within
    return Stat(within.median, min(within.lo, blocks.lo), max(within.hi, blocks.hi), within.n)


def paired_deltas(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """a - b per round, averaged over consecutive rounds 2k and 2k+1 (an odd last round is dropped).

    Those two rounds run every pair of implementations in opposite orders (`bench.harness.timing.round_order`),
    so an effect of a call's place inside a round cancels in each mean instead of biasing the median.
    Fewer than four rounds are returned unpaired."""
    d = [x - y for x, y in zip(a, b)]
    if len(d) < 4:
        return d
    return [(d[i] + d[i + 1]) / 2 for i in range(0, len(d) - 1, 2)]


@dataclass(frozen=True)
class StoppingRule:
    min_reps: int
    max_reps: int
    target_rel_ci: float
    time_cap_s: float

    delta_rel_ci: float = 0.05       # watched paired deltas: 95% CI within +-this of the delta itself

    def verdict(self, samples: Sequence[Sequence[float]], elapsed_s: float,
                deltas: Sequence[Sequence[float]] = ()) -> str | None:
        """None to go on, else why to stop: converged | max_reps | time_cap.

        `samples` holds one list per measured series; all must converge. `deltas` holds watched paired
        differences (per pair of rounds, `paired_deltas`); each must converge to `delta_rel_ci` too, on the
        interval the report shows (`run_ci`: a delta drifting along the run has not converged). `min_reps` is a floor:
        the time cap never stops a configuration before every series has `min_reps` samples.
        """
        n = min(len(s) for s in samples)
        if n < self.min_reps:
            return None
        if (all(median_ci(s).rel_ci <= self.target_rel_ci for s in samples)
                and all(run_ci(d).rel_ci <= self.delta_rel_ci for d in deltas)):
            return "converged"
        if n >= self.max_reps:
            return "max_reps"
        if elapsed_s > self.time_cap_s:
            return "time_cap"
        return None


def converged(samples: Sequence[Sequence[float]], target_rel_ci: float) -> bool:
    """Did every series' median interval get within the target (False: stopped by a cap, still wide)?"""
    return all(median_ci(s).rel_ci <= target_rel_ci for s in samples)
