"""The regression gate: new/base ratio of a median per (config, implementation), with a propagated interval."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from bench.errors import UserError
from bench.io import results_path
from bench.records import Record, load_records

METRICS = ("backward", "forward")
# verdicts; SLOWER and NOW_FAILING are regressions
FASTER, SLOWER, SAME_NOISE, SAME_THRESHOLD = "faster", "slower", "same (within noise)", "same (within threshold)"
NOW_FAILING, FIXED, FAILING_BOTH, NO_METRIC = "now failing", "fixed", "failing in both", "no metric"
REGRESSIONS = (SLOWER, NOW_FAILING)


@dataclass(frozen=True)
class Comparison:
    config_id: str
    variant: str
    base_ms: float | None
    new_ms: float | None
    ratio: float | None  # new / base median
    lo: float | None  # new.lo / base.hi
    hi: float | None  # new.hi / base.lo
    verdict: str
    detail: str = ""

    @property
    def regressed(self) -> bool:
        return self.verdict in REGRESSIONS


def verdict_for(ratio: float, lo: float, hi: float, threshold_pct: float) -> str:
    """Same when the interval holds 1 (noise) or the change is under the threshold; else faster/slower."""
    if lo <= 1.0 <= hi:
        return SAME_NOISE
    if abs(ratio - 1.0) < threshold_pct / 100.0:
        return SAME_THRESHOLD
    return SLOWER if ratio > 1.0 else FASTER


def compare_pair(base: Record, new: Record, metric: str, threshold_pct: float) -> Comparison:
    key = (base.config_id, base.variant)
    if not base.ok or not new.ok:
        verdict = {(True, False): NOW_FAILING, (False, True): FIXED}.get((base.ok, new.ok), FAILING_BOTH)
        return Comparison(*key, None, None, None, None, None, verdict,
                          f"base {base.status}, new {new.status}")
    b, n, detail = *_same_clock(base, new, metric), ""
    if _mode(base) != _mode(new):
        detail = f"timing modes differ ({_mode(base)} vs {_mode(new)}): compared on eager"
    if not b or not n or not b.median or b.lo <= 0:
        return Comparison(*key, None, None, None, None, None, NO_METRIC, detail or f"{metric} timing missing")
    ratio, lo, hi = n.median / b.median, n.lo / b.hi, n.hi / b.lo
    return Comparison(*key, b.median, n.median, ratio, lo, hi, verdict_for(ratio, lo, hi, threshold_pct), detail)


def _mode(rec: Record) -> str:
    return rec.timing_mode or "eager"          # records without the key were timed eager


def _same_clock(base: Record, new: Record, metric: str) -> tuple:
    """The metric's Stats on one clock: the mode's when both runs share it, else eager (a gpu-mode run
    times eager in the same rounds; an eager run's forward/backward are eager)."""
    if _mode(base) == _mode(new):
        return base.stat(metric), new.stat(metric)
    return tuple(r.stat(f"eager.{metric}") if _mode(r) != "eager" else r.stat(metric) for r in (base, new))


def compare_records(base: list[Record], new: list[Record], metric: str = "backward",
                    threshold_pct: float = 5.0) -> list[Comparison]:
    """Every (config_id, variant) present in both runs; UserError when there are none or the flags are bad."""
    if metric not in METRICS:
        raise UserError(f"--metric must be one of {', '.join(METRICS)}, not {metric!r}")
    if threshold_pct < 0:
        raise UserError(f"--threshold must be a non-negative percentage, not {threshold_pct}")
    base_by_key = {(r.config_id, r.variant): r for r in base}
    new_by_key = {(r.config_id, r.variant): r for r in new}
    common = [k for k in base_by_key if k in new_by_key]
    if not common:
        raise UserError("BASE and NEW share no (configuration, implementation): nothing to compare")
    return [compare_pair(base_by_key[k], new_by_key[k], metric, threshold_pct) for k in common]


@dataclass
class CompareResult:
    base_path: Path
    new_path: Path
    metric: str
    threshold_pct: float
    rows: list[Comparison]

    @property
    def regressed(self) -> list[Comparison]:
        return [r for r in self.rows if r.regressed]

    def counts(self) -> dict[str, int]:
        return {v: sum(r.verdict == v for r in self.rows) for v in dict.fromkeys(r.verdict for r in self.rows)}

    def as_json(self) -> dict:
        return {"base": str(self.base_path), "new": str(self.new_path), "metric": self.metric,
                "threshold_pct": self.threshold_pct, "summary": self.counts(),
                "regressions": len(self.regressed), "rows": [asdict(r) | {"regressed": r.regressed}
                                                             for r in self.rows]}


def compare_paths(base: str | Path, new: str | Path, metric: str = "backward",
                  threshold_pct: float = 5.0) -> CompareResult:
    """The `compare` driver: two result directories (or results.jsonl files) -> one comparison per pair."""
    base_path, new_path = results_path(base), results_path(new)
    rows = compare_records(load_records(base_path), load_records(new_path), metric, threshold_pct)
    return CompareResult(base_path, new_path, metric, threshold_pct, rows)
