"""One round per clock: every implementation once, in `bench.harness.timing.round_order`.

Each round function maps a round index to `{name: {"forward": ms, "backward": ms}}`, the shape
`bench.harness.timing.timed_round` returns, so the interleaving loop treats every clock alike:
- `EagerRounds`: `timed_round` itself (idle queue, host launch time included);
- `HeldRounds`: each call enqueued behind a stream hold (GPU time only); a call whose enqueue
  outlives the hold twice in a row (it synchronizes) is timed amortized from then on, and
  `fallbacks` says why;
- `GraphRounds`: forward and backward captured as two CUDA graphs per implementation, replayed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import torch

from bench.harness.clocks.hold import StreamHold
from bench.harness.timing import round_order, timed_round

Forward = Callable[[], torch.Tensor]
RoundResult = dict[str, dict[str, float]]
AMORTIZED_REPS = 8


class EventClock(Protocol):
    """`bench.harness.timing.Clock`: timestamps on the device's timeline."""

    def mark(self) -> Any: ...
    def sync(self) -> None: ...
    def elapsed_ms(self, start: Any, end: Any) -> float: ...


@dataclass
class EagerRounds:
    calls: dict[str, Forward]
    dout: torch.Tensor
    clear: Callable[[], None]
    clock: EventClock
    flush: Callable[[], None]

    together: tuple[tuple[str, str], ...] = ()     # pairs kept side by side (`round_order`)

    def __call__(self, round_index: int) -> RoundResult:
        return timed_round(self.calls, self.dout, self.clear, self.clock, self.flush, round_index,
                           together=self.together)


@dataclass
class HeldRounds:
    """GPU time: events recorded behind a stream hold, one synchronize per call."""
    calls: dict[str, Forward]
    dout: torch.Tensor
    clear: Callable[[], None]
    clock: EventClock
    flush: Callable[[], None]
    hold: StreamHold
    amortized_reps: int = AMORTIZED_REPS
    fallbacks: dict[str, str] = field(default_factory=dict)          # name -> why it is timed amortized
    enqueue_ms: dict[str, list[float]] = field(default_factory=dict)  # host time to enqueue each held call
    warmed: set[str] = field(default_factory=set)                    # names called once unheld
    together: tuple[tuple[str, str], ...] = ()                       # pairs kept side by side
    _last_timeout: str = field(default="", repr=False)

    def __call__(self, round_index: int) -> RoundResult:
        result = {}
        for name in round_order(list(self.calls), round_index, self.together):
            if name not in self.warmed:      # first calls load kernels lazily, which can wait for the stream
                self._unheld(name)
                self.warmed.add(name)
            sample = None
            if name not in self.fallbacks:   # one timeout can be a stall: a second in a row convicts the call
                sample = self._held(name) or self._held(name)
            if sample is None and name not in self.fallbacks:
                self.fallbacks[name] = self._last_timeout
            result[name] = sample if sample is not None else self._amortized(name)
        return result

    def _unheld(self, name: str) -> None:
        self.clear()
        self.calls[name]().backward(self.dout)
        self.clock.sync()

    def _held(self, name: str) -> dict[str, float] | None:
        self.clear()
        self.flush()
        self.hold.engage()
        start = time.perf_counter()
        t0 = self.clock.mark()
        out = self.calls[name]()
        t1 = self.clock.mark()
        out.backward(self.dout)
        t2 = self.clock.mark()
        enqueue_s = time.perf_counter() - start
        self.hold.release()
        self.clock.sync()
        self.enqueue_ms.setdefault(name, []).append(enqueue_s * 1e3)
        if self.hold.timed_out() or enqueue_s >= self.hold.timeout_s:
            self._last_timeout = (f"enqueue took {enqueue_s * 1e3:.0f} ms, past the {self.hold.kind} hold's "
                                  f"{self.hold.timeout_s * 1e3:.0f} ms timeout twice in a row (the call "
                                  f"synchronizes); timed amortized: {self.amortized_reps} calls back to back")
            return None
        return {"forward": self.clock.elapsed_ms(t0, t1), "backward": self.clock.elapsed_ms(t1, t2)}

    def _amortized(self, name: str) -> dict[str, float]:
        return amortized_call(self.calls[name], self.dout, self.clear, self.clock, self.flush, self.amortized_reps)


def amortized_call(forward: Forward, dout: torch.Tensor, clear: Callable[[], None], clock: EventClock,
                   flush: Callable[[], None], reps: int) -> dict[str, float]:
    """`reps` forward+backward calls back to back; per direction, its segments summed over `reps`.

    The segments tile the span from the first forward to the last backward on the GPU's timeline
    (nothing else is enqueued in between), so their sum is the span's time split by direction.
    """
    clear()
    flush()
    marks = []
    for _ in range(reps):
        t0 = clock.mark()
        out = forward()
        t1 = clock.mark()
        out.backward(dout)
        t2 = clock.mark()
        marks.append((t0, t1, t2))
        del out
        clear()
    clock.sync()
    return {"forward": sum(clock.elapsed_ms(a, b) for a, b, _ in marks) / reps,
            "backward": sum(clock.elapsed_ms(b, c) for _, b, c in marks) / reps}


@dataclass
class CapturedCall:
    forward: Any          # torch.cuda.CUDAGraph
    backward: Any


def capture_call(forward: Forward, dout: torch.Tensor, clear: Callable[[], None], warmup: int = 3) -> CapturedCall:
    """Forward and backward as two graphs sharing one private memory pool (as `make_graphed_callables`).

    The captured output and its autograd graph are dropped afterwards: their memory stays in the
    graphs' private pool, which no other allocation draws from, and a live autograd graph would keep
    the leaves' gradient accumulators bound to the capture stream for the eager calls that follow.
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            clear()
            forward().backward(dout)
    torch.cuda.current_stream().wait_stream(side)
    clear()
    fwd_graph, bwd_graph = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
    with torch.cuda.graph(fwd_graph):
        out = forward()
    with torch.cuda.graph(bwd_graph, pool=fwd_graph.pool()):
        out.backward(dout)
    del out
    clear()
    return CapturedCall(fwd_graph, bwd_graph)


@dataclass
class GraphRounds:
    """Replays of every captured implementation in `round_order`; failed captures kept as errors."""
    graphs: dict[str, CapturedCall]
    clock: EventClock
    flush: Callable[[], None]
    errors: dict[str, str] = field(default_factory=dict)
    together: tuple[tuple[str, str], ...] = ()

    @classmethod
    def capture(cls, calls: dict[str, Forward], dout: torch.Tensor, clear: Callable[[], None],
                clock: EventClock, flush: Callable[[], None],
                together: tuple[tuple[str, str], ...] = ()) -> "GraphRounds":
        graphs, errors = {}, {}
        for name, forward in calls.items():
            try:
                graphs[name] = capture_call(forward, dout, clear)
            except Exception as exc:  # noqa: BLE001 - a capture failure is data, not a crash
                errors[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
                clear()
        return cls(graphs, clock, flush, errors, together)

    def __call__(self, round_index: int) -> RoundResult:
        marks = {}
        for name in round_order(list(self.graphs), round_index, self.together):
            self.flush()
            g = self.graphs[name]
            t0 = self.clock.mark()
            g.forward.replay()
            t1 = self.clock.mark()
            g.backward.replay()
            t2 = self.clock.mark()
            marks[name] = (t0, t1, t2)
        self.clock.sync()
        return {n: {"forward": self.clock.elapsed_ms(a, b), "backward": self.clock.elapsed_ms(b, c)}
                for n, (a, b, c) in marks.items()}
