"""Medians with distribution-free confidence intervals, and the stopping rule that uses them.

The interval of the median comes from order statistics (binomial ranks), so it assumes nothing
about the shape of the timing distribution (long right tails are the norm on GPUs).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

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
        differences (a - b per round); each must converge to `delta_rel_ci` too. `min_reps` is a floor:
        the time cap never stops a configuration before every series has `min_reps` samples.
        """
        n = min(len(s) for s in samples)
        if n < self.min_reps:
            return None
        if (all(median_ci(s).rel_ci <= self.target_rel_ci for s in samples)
                and all(median_ci(d).rel_ci <= self.delta_rel_ci for d in deltas)):
            return "converged"
        if n >= self.max_reps:
            return "max_reps"
        if elapsed_s > self.time_cap_s:
            return "time_cap"
        return None


def converged(samples: Sequence[Sequence[float]], target_rel_ci: float) -> bool:
    """Did every series' median interval get within the target (False: stopped by a cap, still wide)?"""
    return all(median_ci(s).rel_ci <= target_rel_ci for s in samples)
