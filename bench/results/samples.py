"""What the worker measured for one configuration: raw per-round samples and the facts of the run.

Plain data (lists of floats, dicts of strings), so it crosses the process boundary and the records
are built from it in the parent (bench.harness.record_builder); nothing here is a statistic yet.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Optional

Series = dict[str, list[float]]                   # "forward" | "backward" -> one sample per round


@dataclass(frozen=True)
class MeasuredSamples:
    samples_ms: dict[str, Series]                 # implementation -> the timing mode's per-round samples
    phase_samples_ms: dict[str, list[dict[str, float]]]    # implementation -> per phase round: phase -> ms
    bandwidth: dict[str, Any]                     # the fill/add probe (bench.harness.measure.bandwidth_gbps)
    rounds: int
    stop_reason: str                              # converged | max_reps | time_cap
    converged: Optional[bool] = None
    timing: dict[str, Any] = field(default_factory=lambda: {"mode": "eager", "series": ["eager"], "note": None,
                                                            "notes": {}})
    clock_samples_ms: dict[str, dict[str, Series]] = field(default_factory=dict)   # clock -> implementation -> series
    watched_deltas: Optional[dict[str, Any]] = None
    gpu_clocks: Optional[dict[str, Any]] = None
    measure_s: Optional[float] = None
    recompiled_in_rounds: int = 0                 # kernels compiled inside the timed rounds (FA4's first calls)

    @property
    def mode(self) -> str:
        return self.timing["mode"]

    def by_clock(self) -> dict[str, dict[str, Series]]:
        """Every clock's samples (the mode's alone when only it ran)."""
        return self.clock_samples_ms or {self.mode: self.samples_ms}

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> "MeasuredSamples":
        """From the keyword form (hand-made samples in tests and scripts); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(obj) - known
        if unknown:
            raise TypeError(f"unknown sample keys: {', '.join(sorted(unknown))}")
        return cls(**{k: v for k, v in obj.items() if v is not None or k in ("converged",)})
