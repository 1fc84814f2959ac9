"""Holding the current CUDA stream while the host enqueues a timed call.

`engage()` enqueues a kernel that blocks the stream; the caller then records its start event,
enqueues the call, records its end event and `release()`s the hold. The GPU starts the call only
once it has all been enqueued, so the events measure GPU work, not the host's launch pace.

A call that synchronizes inside its enqueue (`.item()` on a device tensor, an allocation that
syncs, `torch.cuda.synchronize()`) blocks the host behind the hold: the hold ends by its timeout,
and `timed_out()` says so after the next synchronize. Such calls must be timed another way.

Two holds: `FlagSpinHold` (a spin on a pinned host flag, as nvbench's blocking kernel; needs
Triton) and `SleepHold` (`torch.cuda._sleep` for a fixed time: wastes GPU time, detects only by
host wall time; the fallback where Triton is missing).
"""
from __future__ import annotations

import time
from typing import Protocol

import torch

DEFAULT_TIMEOUT_S = 0.25   # an fwd+bwd enqueue takes ~1 ms; a quarter second leaves room for a GC pause


class StreamHold(Protocol):
    kind: str
    timeout_s: float

    def engage(self) -> None: ...          # enqueue the hold on the current stream
    def release(self) -> None: ...         # let the stream go on
    def timed_out(self) -> bool: ...       # after a synchronize: did the hold end by its timeout?


class FlagSpinHold:
    """One-thread kernel spinning on a generation counter in pinned memory (nvbench's blocking kernel)."""

    kind = "flag_spin"

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S):
        from bench.harness.clocks import spin_kernel   # Triton: imported on CUDA only
        self._spin = spin_kernel
        self.timeout_s = timeout_s
        self._timeout_ns = int(timeout_s * 1e9)
        self.flag = torch.zeros(1, dtype=torch.int32, pin_memory=True)
        self.status = torch.zeros(1, dtype=torch.int32, pin_memory=True)
        self._generation = 0
        self.engage()              # compile, and prove a release reaches the GPU
        self.release()
        torch.cuda.synchronize()
        if self.timed_out():
            raise RuntimeError(f"the spin did not see its release (status {int(self.status[0])})")

    def engage(self) -> None:
        self._generation += 1
        self.status[0] = self._spin.STATUS_PENDING
        self._spin.launch(self.flag, self.status, self._generation, self._timeout_ns)

    def release(self) -> None:
        self.flag[0] = self._generation

    def timed_out(self) -> bool:
        return int(self.status[0]) != self._spin.STATUS_RELEASED


class SleepHold:
    """`torch.cuda._sleep` for a fixed time; timed out when the host took longer than the sleep."""

    kind = "sleep"

    def __init__(self, timeout_s: float = 0.02):
        self.timeout_s = timeout_s
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda._sleep(1_000_000)           # warm
        start.record()
        torch.cuda._sleep(10_000_000)
        end.record()
        torch.cuda.synchronize()
        cycles_per_s = 10_000_000 / (start.elapsed_time(end) / 1e3)
        self._cycles = int(cycles_per_s * timeout_s)
        self._engaged_at = 0.0
        self._host_s = 0.0

    def engage(self) -> None:
        torch.cuda._sleep(self._cycles)
        self._engaged_at = time.perf_counter()

    def release(self) -> None:
        self._host_s = time.perf_counter() - self._engaged_at

    def timed_out(self) -> bool:
        return self._host_s >= self.timeout_s


def build_hold(timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[StreamHold | None, str | None]:
    """The best hold this CUDA process can build, and a note when it is not the flag spin."""
    try:
        return FlagSpinHold(timeout_s), None
    except Exception as exc:  # noqa: BLE001 - no Triton, no pinned memory, a compile error: fall back
        spin_error = f"{type(exc).__name__}: {str(exc)[:200]}"
    try:
        return SleepHold(), f"flag spin unavailable ({spin_error}); stream held by a fixed 20 ms sleep"
    except Exception as exc:  # noqa: BLE001
        return None, f"no stream hold ({spin_error}; sleep: {type(exc).__name__}: {str(exc)[:200]})"


def held_ms(hold: StreamHold, host_wait_s: float) -> float:
    """GPU time between an event before `engage()` and one after it, with the host waiting
    `host_wait_s` before `release()`: about `host_wait_s` when the hold holds the stream."""
    before, after = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    before.record()
    hold.engage()
    after.record()
    time.sleep(host_wait_s)
    hold.release()
    torch.cuda.synchronize()
    return before.elapsed_time(after)
