"""Which clocks a configuration is measured with, and why a requested one was refused.

The sweep asks for a mode (`--timing gpu|eager`, gpu by default on CUDA) and optionally graph
replays (`--cuda-graph`); the device decides what is possible. A refusal is not an error: the
record carries the mode that was used and a note that says why (`timing_mode`, `timing_note`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from bench.spec.errors import UserError
from prefixlm_attn.backends.base import Unavailable
from bench.spec.grid import TIMING_MODES  # noqa: F401 - the names live in the spec floor

CPU_GPU_NOTE = ("gpu mode needs CUDA: the reference backend on the CPU runs synchronously, so the host's "
                "time is the call's time; timed eager")
CPU_GRAPH_NOTE = "CUDA graphs need a CUDA device: no graph replays"


@dataclass(frozen=True)
class TimingPlan:
    mode: str                   # "gpu" | "eager": the clock the verdict and the headline numbers use
    series: tuple[str, ...]     # clocks measured in every round: subset of ("gpu", "eager", "graph")
    note: str | None = None     # why the plan differs from the request

    def demoted(self, why: "Unavailable | str") -> "TimingPlan":
        """The same plan without the gpu clock (no stream hold could be built: `why`)."""
        reason = why.reason if isinstance(why, Unavailable) else why
        series = tuple(s for s in self.series if s != "gpu")
        if "eager" not in series:
            series = ("eager",) + series
        note = "; ".join(n for n in (self.note, f"gpu mode unavailable: {reason}; timed eager") if n)
        return replace(self, mode="eager", series=series, note=note)


def plan_timing(requested: str | None, device_type: str, cuda_graph: bool = False) -> TimingPlan:
    """gpu (held) + eager on CUDA unless eager is asked for; eager alone elsewhere, with the reason."""
    if requested is not None and requested not in TIMING_MODES:
        raise UserError(f"--timing {requested!r}: choose from {', '.join(TIMING_MODES)}")
    if device_type != "cuda":
        notes = [CPU_GPU_NOTE] if requested != "eager" else []
        if cuda_graph:
            notes.append(CPU_GRAPH_NOTE)
        return TimingPlan("eager", ("eager",), "; ".join(notes) or None)
    mode = requested or "gpu"
    series = ("gpu", "eager") if mode == "gpu" else ("eager",)
    return TimingPlan(mode, series + (("graph",) if cuda_graph else ()))
