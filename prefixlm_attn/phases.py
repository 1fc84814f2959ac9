"""Named phases inside the op, observed by timers and profilers.

The op marks its steps with `with phase("bwd.zero_fill"):`. Observers (a CUDA-event timer in
`bench.timing`, an NVTX emitter in `profiles.nvtx_ranges`) subscribe with `observing(obs)`. With
nobody subscribed a phase costs one list check, so timed runs without observers pay nothing.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Protocol

FORWARD_PHASES = ("fwd.bidir_pass", "fwd.causal_pass", "fwd.merge", "fwd.block_mask", "fwd.single_pass",
                  "fwd.pad_zero")
BACKWARD_PHASES = ("bwd.alloc", "bwd.zero_fill", "bwd.bidir_pass", "bwd.causal_pass", "bwd.block_mask",
                   "bwd.single_pass", "bwd.accumulate", "bwd.pad_zero")
ALL_PHASES = FORWARD_PHASES + BACKWARD_PHASES


class PhaseObserver(Protocol):
    def begin(self, name: str) -> None: ...
    def end(self, name: str) -> None: ...


_observers: list[PhaseObserver] = []


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Mark a step of the op; free when nothing observes."""
    if not _observers:
        yield
        return
    active = tuple(_observers)
    for obs in active:
        obs.begin(name)
    try:
        yield
    finally:
        for obs in reversed(active):
            obs.end(name)


@contextmanager
def observing(observer: PhaseObserver) -> Iterator[PhaseObserver]:
    """Subscribe `observer` to every phase for the duration of the block."""
    _observers.append(observer)
    try:
        yield observer
    finally:
        _observers.remove(observer)
