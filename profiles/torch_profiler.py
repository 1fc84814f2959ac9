"""torch.profiler path (works on CPU): record_function ranges, a Chrome trace, per-range attribution.

The op's phases become `record_function` ranges (user annotations) inside "config:<id>" >
"rep:<variant>:<i>". The exported Chrome trace (OUT/trace.json, opens in Perfetto) is parsed the way
nsys output is: a GPU kernel/memset/memcpy joins its launching runtime call by "correlation", and
the call's enclosing annotations on its thread are its stack. Without CUDA, the activities are the
CPU ops directly under an annotation (their children are already inside their time), leaving out
ops that themselves enclose annotations (the custom op around its phases), which would count twice.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Sequence

from torch.profiler import ProfilerActivity, profile, record_function

from bench.spec.grid import Config
from profiles.attribution import Activity, Span, global_spans, thread_stacks
from profiles.workload_runner import measured_reps, overhead_for, prepare_run, warm_up

ANNOTATION, CPU_OP = "user_annotation", "cpu_op"
LAUNCH_CATS = ("cuda_runtime", "cuda_driver")
DEVICE_CATS = {"kernel": "kernel", "gpu_memset": "memset", "gpu_memcpy": "memcpy"}


class RecordFunctionObserver:
    """Phase observer: one torch.profiler record_function range per phase."""

    def __init__(self) -> None:
        self._open: list[record_function] = []

    def begin(self, name: str) -> None:
        rf = record_function(name)
        rf.__enter__()
        self._open.append(rf)

    def end(self, name: str) -> None:
        self._open.pop().__exit__(None, None, None)


def capture_trace(out_dir: Path, config: Config, variants: Sequence[str], backend: str, device: str,
                  reps: int, warmup: int = 2, overhead_reps: int = 0) -> tuple[Path, Optional[dict]]:
    """Run the reps under torch.profiler; returns (OUT/trace.json, NVTX overhead or None).

    The overhead is measured on the same prepared run after the capture (as `run_profiled` does), so
    the workload is built and warmed up once; `overhead_reps` <= 0 skips it.
    """
    run = prepare_run(config, variants, backend, device, nvtx=False)
    run.observers.append(RecordFunctionObserver())
    warm_up(run, warmup)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if run.cuda else [])
    with without_profiler_chatter(), profile(activities=activities) as prof:
        measured_reps(run, reps, range_hook=record_function)
    out_dir.mkdir(parents=True, exist_ok=True)
    trace = out_dir / "trace.json"
    prof.export_chrome_trace(str(trace))
    overhead = overhead_for(run, variants[0], overhead_reps) if overhead_reps > 0 else None
    return trace, overhead


PROFILER_CHATTER = ("USDT:", "STAGE:")        # kineto's own start/stop lines, written straight to fd 2


@contextmanager
def without_profiler_chatter() -> Iterator[None]:
    """Hold fd 2 in a temporary file while the profiler runs, then pass on every line but kineto's
    'USDT: ... profiler_start' chatter (it writes to the descriptor, past sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            for line in held.read().decode(errors="replace").splitlines(keepends=True):
                if not line.startswith(PROFILER_CHATTER):
                    sys.stderr.write(line)


def _ns(us: float) -> int:
    return int(round(float(us) * 1000))


def _parents(events: list[dict]) -> list[Optional[int]]:
    """Parent index of each host event on one thread (containment; ties: longer, then annotation, first)."""
    order = sorted(range(len(events)), key=lambda i: (events[i]["t0"], -events[i]["t1"],
                                                       events[i]["cat"] != ANNOTATION))
    parents: list[Optional[int]] = [None] * len(events)
    stack: list[int] = []
    for i in order:
        while stack and events[stack[-1]]["t1"] <= events[i]["t0"]:
            stack.pop()
        parents[i] = stack[-1] if stack else None
        stack.append(i)
    return parents


def trace_activities(trace_path: Path | str) -> list[Activity]:
    """Device activities (or, without any, top-level CPU ops) with their annotation stacks."""
    raw = json.loads(Path(trace_path).read_text())["traceEvents"]
    host: dict[tuple, list[dict]] = {}
    device: list[dict] = []
    for e in raw:
        if e.get("ph") != "X" or "dur" not in e:
            continue
        cat = e.get("cat")
        t0 = _ns(e["ts"])
        ev = {"cat": cat, "name": e.get("name", "?"), "t0": t0, "t1": t0 + _ns(e["dur"]), "args": e.get("args") or {}}
        if cat in (ANNOTATION, CPU_OP) + LAUNCH_CATS:
            host.setdefault((e.get("pid"), e.get("tid")), []).append(ev)
        elif cat in DEVICE_CATS:
            device.append(ev)
    spans = {thread: [Span(ev["name"], ev["t0"], ev["t1"]) for ev in evs if ev["cat"] == ANNOTATION]
             for thread, evs in host.items()}
    threads = list(host)
    spans_by_index = {i: spans[t] for i, t in enumerate(threads)}
    chosen: list[tuple[int, dict, Optional[dict]]] = []    # (thread index, host event, device event)
    launch_by_corr = {}
    for ti, thread in enumerate(threads):
        evs = host[thread]
        parents = _parents(evs)
        wraps_annotation = set()            # ops like the autograd node around the op's own phases
        for i, ev in enumerate(evs):
            j = parents[i] if ev["cat"] == ANNOTATION else None
            while j is not None and j not in wraps_annotation:
                wraps_annotation.add(j)
                j = parents[j]
        for i, (ev, parent) in enumerate(zip(evs, parents)):
            if i in wraps_annotation:
                continue
            if ev["cat"] in LAUNCH_CATS and "correlation" in ev["args"]:
                launch_by_corr[ev["args"]["correlation"]] = (ti, ev)
            elif not device and ev["cat"] == CPU_OP and parent is not None and evs[parent]["cat"] == ANNOTATION:
                chosen.append((ti, ev, None))
    for dev in device:
        hit = launch_by_corr.get(dev["args"].get("correlation"))
        if hit is not None:
            chosen.append((hit[0], hit[1], dev))
    stacks: list[tuple[str, ...]] = [()] * len(chosen)
    shared = global_spans(spans_by_index)
    for ti in range(len(threads)):
        idx = [k for k, c in enumerate(chosen) if c[0] == ti]
        for k, st in zip(idx, thread_stacks(spans_by_index, ti, [chosen[k][1]["t0"] for k in idx], shared)):
            stacks[k] = st
    acts = []
    for (ti, host_ev, dev), stack in zip(chosen, stacks):
        ev = dev or host_ev
        kind = DEVICE_CATS[dev["cat"]] if dev else "cpu_op"
        nbytes = ev["args"].get("bytes") if dev else None
        acts.append(Activity(ev["name"], kind, ev["t1"] - ev["t0"], stack,
                             None if nbytes is None else int(nbytes)))
    return acts

