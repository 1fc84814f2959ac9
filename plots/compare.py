"""The regression gate: new/base ratio of a median per (config, implementation), with a propagated interval.

The gate also notices missing data (a crashed or partial NEW must not pass: `coverage`) and runs
that measured different things (another GPU, backend or device: `setup_differences`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from bench.spec.errors import UserError
from bench.results.io import read_json_object, results_path
from bench.results.records import Record, load_records
from bench.spec.names import split_backend

METRICS = ("backward", "forward")
# verdicts; SLOWER and NOW_FAILING are regressions
FASTER, SLOWER, SAME_NOISE, SAME_THRESHOLD = "faster", "slower", "same (within noise)", "same (within threshold)"
NOW_FAILING, FIXED, FAILING_BOTH, NO_METRIC = "now failing", "fixed", "failing in both", "no metric"
REGRESSIONS = (SLOWER, NOW_FAILING)
EXIT_REGRESSION, EXIT_BAD_INPUT, EXIT_MISSING = 1, 2, 3     # compare's exit codes (0: no regression)


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


def match_key(base: list[Record], new: list[Record]) -> Callable[[Record], tuple]:
    """How a record of BASE finds its NEW: by configuration, implementation and backend, so a run of the
    backend axis (`zeros_always [fa4]`) and a run of fa4 alone (`zeros_always`, backend fa4) pair up. Two
    runs of one backend each, which differ (compared under --allow-mixed), pair by name as before."""
    one_each = len({r.backend for r in base}) == 1 and len({r.backend for r in new}) == 1
    if one_each:
        return lambda r: (r.config_id, r.variant)
    return lambda r: (r.config_id, split_backend(r.variant)[0], r.backend)


def compare_records(base: list[Record], new: list[Record], metric: str = "backward",
                    threshold_pct: float = 5.0) -> list[Comparison]:
    """Every (config_id, variant) present in both runs; UserError when there are none or the flags are bad."""
    if metric not in METRICS:
        raise UserError(f"--metric must be one of {', '.join(METRICS)}, not {metric!r}")
    if not (isinstance(threshold_pct, (int, float)) and math.isfinite(threshold_pct)) or threshold_pct < 0:
        raise UserError(f"--threshold must be a non-negative percentage, not {threshold_pct}")
    key = match_key(base, new)
    base_by_key = {key(r): r for r in base}
    new_by_key = {key(r): r for r in new}
    common = [k for k in base_by_key if k in new_by_key]
    if not common:
        raise UserError("BASE and NEW share no (configuration, implementation): nothing to compare")
    return [compare_pair(base_by_key[k], new_by_key[k], metric, threshold_pct) for k in common]


@dataclass
class Coverage:
    """What one run holds and the other lacks, by configuration and by (configuration, implementation)."""
    configs_base_only: list[str] = field(default_factory=list)
    configs_new_only: list[str] = field(default_factory=list)
    impls_base_only: list[tuple[str, str]] = field(default_factory=list)   # within configurations in both
    impls_new_only: list[tuple[str, str]] = field(default_factory=list)

    @property
    def new_lacks(self) -> bool:
        """NEW misses data BASE has: a partial or crashed candidate run."""
        return bool(self.configs_base_only or self.impls_base_only)

    def lines(self) -> list[str]:
        out = []
        for what, items in (("configurations only in BASE (missing from NEW)", self.configs_base_only),
                            ("configurations only in NEW", self.configs_new_only)):
            if items:
                out.append(f"{len(items)} {what}: " + ", ".join(items))
        for what, pairs in (("implementations only in BASE (missing from NEW)", self.impls_base_only),
                            ("implementations only in NEW", self.impls_new_only)):
            if pairs:
                out.append(f"{len(pairs)} {what}: " + ", ".join(f"{c} / {v}" for c, v in pairs))
        return out


def coverage(base: list[Record], new: list[Record]) -> Coverage:
    key = match_key(base, new)

    def index(records: list[Record]) -> dict[str, dict[tuple, str]]:
        out: dict[str, dict[tuple, str]] = {}
        for r in records:
            out.setdefault(r.config_id, {})[key(r)] = r.variant
        return out
    b, n = index(base), index(new)
    cov = Coverage([c for c in b if c not in n], [c for c in n if c not in b])
    for cid in (c for c in b if c in n):
        cov.impls_base_only += [(cid, v) for k, v in b[cid].items() if k not in n[cid]]
        cov.impls_new_only += [(cid, v) for k, v in n[cid].items() if k not in b[cid]]
    return cov


def _setup(records: list[Record], env: Optional[dict[str, Any]]) -> dict[str, set]:
    env = env or {}
    gpu = env.get("gpu") or ("cpu" if env.get("cpu_reference") else None)
    return {"backend": {r.backend for r in records if r.backend},
            "device": {r.device for r in records if r.device},
            "GPU": {gpu} if gpu else set()}


def setup_differences(base: list[Record], new: list[Record], base_env: Optional[dict] = None,
                      new_env: Optional[dict] = None) -> list[str]:
    """`what: BASE's -> NEW's` for the GPU, backend and device when the two runs differ (unknown: not compared)."""
    b, n = _setup(base, base_env), _setup(new, new_env)
    # backends differ only when the runs share none: a run of the backend axis holds a one-backend run's
    return [f"{k}: {','.join(sorted(b[k]))} -> {','.join(sorted(n[k]))}" for k in b
            if b[k] and n[k] and (not b[k] & n[k] if k == "backend" else b[k] != n[k])]


@dataclass
class CompareResult:
    base_path: Path
    new_path: Path
    metric: str
    threshold_pct: float
    rows: list[Comparison]
    coverage: Coverage = field(default_factory=Coverage)
    mixed: list[str] = field(default_factory=list)      # setup differences accepted by --allow-mixed

    @property
    def regressed(self) -> list[Comparison]:
        return [r for r in self.rows if r.regressed]

    def exit_code(self, allow_missing: bool = False) -> int:
        """0, EXIT_REGRESSION (takes precedence), or EXIT_MISSING when NEW lacks data BASE has."""
        if self.regressed:
            return EXIT_REGRESSION
        return EXIT_MISSING if self.coverage.new_lacks and not allow_missing else 0

    def notes(self) -> list[str]:
        """Lines for what one run lacks, and the accepted setup differences."""
        return [f"mixed runs (--allow-mixed): {m}" for m in self.mixed] + self.coverage.lines()

    def counts(self) -> dict[str, int]:
        return {v: sum(r.verdict == v for r in self.rows) for v in dict.fromkeys(r.verdict for r in self.rows)}

    def as_json(self) -> dict:
        return {"base": str(self.base_path), "new": str(self.new_path), "metric": self.metric,
                "threshold_pct": self.threshold_pct, "summary": self.counts(),
                "regressions": len(self.regressed), "rows": [asdict(r) | {"regressed": r.regressed}
                                                             for r in self.rows],
                "missing": asdict(self.coverage), "mixed": self.mixed}


def compare_paths(base: str | Path, new: str | Path, metric: str = "backward",
                  threshold_pct: float = 5.0, allow_mixed: bool = False) -> CompareResult:
    """The `compare` driver: two result directories (or results.jsonl files) -> one comparison per pair,
    what NEW lacks, and a UserError for runs measured on another GPU, backend or device (unless allowed)."""
    base_path, new_path = results_path(base), results_path(new)
    base_records, new_records = load_records(base_path), load_records(new_path)
    mixed = setup_differences(base_records, new_records, read_json_object(base_path.parent / "env.json"),
                              read_json_object(new_path.parent / "env.json"))
    if mixed and not allow_mixed:
        raise UserError(f"BASE and NEW were measured differently ({'; '.join(mixed)}); "
                        "pass --allow-mixed to compare them anyway")
    rows = compare_records(base_records, new_records, metric, threshold_pct)
    return CompareResult(base_path, new_path, metric, threshold_pct, rows, coverage(base_records, new_records),
                         mixed)
