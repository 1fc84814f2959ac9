"""NVTX ranges for profiled runs: the op's phases, each configuration and each repetition.

Nothing here is active in timed sweeps: `prefixbench profile` subscribes `NvtxPhaseObserver` to the
op's phases and wraps configurations/repetitions with `nvtx_range`. Ranges go to the "prefixbench"
domain through the `nvtx` package; without it, torch.cuda.nvtx pushes them to the default domain;
on a CPU-only torch build with neither, ranges are no-ops (backend "none").
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Optional

import torch

from bench.harness.timing import Clock
from prefixlm_attn.phases import observing
from profiles.attribution import CONFIG_PREFIX, REP_PREFIX

DOMAIN = "prefixbench"


def _torch_nvtx_works() -> bool:
    """torch.cuda.nvtx raises on CPU-only builds; probe once."""
    try:
        torch.cuda.nvtx.range_push("prefixbench.probe")
        torch.cuda.nvtx.range_pop()
    except (RuntimeError, AttributeError):
        return False
    return True


def _nvtx_module():
    try:
        import nvtx  # type: ignore[import-not-found]
    except ImportError:
        return None
    return nvtx


class NvtxEmitter:
    """push/pop of named ranges in one domain; `backend` says which library emits them."""

    def __init__(self, domain: str = DOMAIN):
        self.domain = domain
        self._nvtx = _nvtx_module()
        if self._nvtx is not None:
            self.backend = "nvtx"
        else:
            self.backend = "torch.cuda.nvtx" if _torch_nvtx_works() else "none"

    @property
    def range_domain(self) -> Optional[str]:
        """The domain the ranges land in (None: the default domain, as torch.cuda.nvtx emits)."""
        return self.domain if self._nvtx is not None else None

    def push(self, name: str) -> None:
        if self._nvtx is not None:
            self._nvtx.push_range(message=name, domain=self.domain)
        elif self.backend == "torch.cuda.nvtx":
            torch.cuda.nvtx.range_push(name)

    def pop(self) -> None:
        if self._nvtx is not None:
            self._nvtx.pop_range(domain=self.domain)
        elif self.backend == "torch.cuda.nvtx":
            torch.cuda.nvtx.range_pop()


class NvtxPhaseObserver:
    """Phase observer: one NVTX range per phase of the op (names as in prefixlm_attn.phases)."""

    def __init__(self, emitter: Optional[NvtxEmitter] = None):
        self.emitter = emitter or NvtxEmitter()

    def begin(self, name: str) -> None:
        self.emitter.push(name)

    def end(self, name: str) -> None:
        self.emitter.pop()


@contextmanager
def nvtx_range(emitter: Optional[NvtxEmitter], name: str) -> Iterator[None]:
    """A range around a block; a no-op when `emitter` is None (profiling off)."""
    if emitter is None:
        yield
        return
    emitter.push(name)
    try:
        yield
    finally:
        emitter.pop()


def config_range_name(config_id: str) -> str:
    """Prefix shared with `attribution`, which parses these names back."""
    return f"{CONFIG_PREFIX}{config_id}"


def rep_range_name(variant: str, index: int) -> str:
    """Parsed back by `attribution.rep_variant`."""
    return f"{REP_PREFIX}{variant}:{index}"


def _time_reps_ms(run_rep: Callable[[], None], reps: int, cuda: bool) -> float:
    """Total milliseconds of `reps` calls on the sweep's clock (CUDA events on GPU, perf_counter on CPU)."""
    clock = Clock(torch.device("cuda" if cuda else "cpu"))
    clock.sync()
    start = clock.mark()
    for _ in range(reps):
        run_rep()
    stop = clock.mark()
    clock.sync()
    return clock.elapsed_ms(start, stop)


def measure_nvtx_overhead(run_rep: Callable[[], None], reps: int = 20, cuda: bool = False,
                          emitter: Optional[NvtxEmitter] = None, rounds: int = 3) -> dict:
    """Per-rep cost of the NVTX phase observer: time `reps` fwd+bwd with and without it.

    Rounds alternate plain/observed and the best round of each is kept, so one-off noise does not
    masquerade as overhead. Returns microseconds and percent of the plain rep. A difference within
    the plain rounds' own spread (or negative, which only noise can make) is reported as 0 with
    `below_resolution: true` and the resolution, never as a negative overhead.
    """
    observer = NvtxPhaseObserver(emitter)
    run_rep()  # warm-up
    plain_ms, observed_ms = [], []
    for _ in range(rounds):
        plain_ms.append(_time_reps_ms(run_rep, reps, cuda))
        with observing(observer):
            observed_ms.append(_time_reps_ms(run_rep, reps, cuda))
    plain_rep_us = min(plain_ms) / reps * 1e3
    observed_rep_us = min(observed_ms) / reps * 1e3
    return overhead_summary(plain_ms, observed_ms, reps) | {
        "reps": reps, "rounds": rounds, "emitter": observer.emitter.backend,
        "clock": "cuda_events" if cuda else "perf_counter"}


def overhead_summary(plain_ms: list[float], observed_ms: list[float], reps: int) -> dict:
    """Best-round per-rep times and the overhead, floored at the plain rounds' spread (the resolution)."""
    plain_rep_us = min(plain_ms) / reps * 1e3
    observed_rep_us = min(observed_ms) / reps * 1e3
    resolution_us = (max(plain_ms) - min(plain_ms)) / reps * 1e3
    overhead_us = observed_rep_us - plain_rep_us
    below = overhead_us <= resolution_us
    if below:
        overhead_us = 0.0
    return {"plain_rep_us": plain_rep_us, "observed_rep_us": observed_rep_us,
            "overhead_per_rep_us": overhead_us, "resolution_us": resolution_us, "below_resolution": below,
            "overhead_percent": 100.0 * overhead_us / plain_rep_us if plain_rep_us > 0 else 0.0}
