"""GPU activity of a call as the torch profiler (CUPTI) sees it: the reference GPU time is checked against.

The sum of kernel (and memset/memcpy) durations excludes the gaps between them, so a clock that
measures GPU time alone should land on it; one that waits for the host lands above it.
"""
from __future__ import annotations

from typing import Callable

import torch

ANNOTATIONS = ("gpu_user_annotation", "user_annotation")


def profiler_kernel_ms(call: Callable[[], None], reps: int = 10, warmup: int = 2) -> dict[str, float]:
    """Mean per call of the summed device-activity time, over `reps` calls each followed by a synchronize."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    for _ in range(warmup):
        call()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            call()
            torch.cuda.synchronize()
    device = [e for e in prof.events() if e.device_type == DeviceType.CUDA   # not ranges on the GPU row:
              and not getattr(e, "is_user_annotation", False)            # they would count kernels twice
              and getattr(e, "activity_type", None) not in ANNOTATIONS]
    if not device:
        raise RuntimeError("the profiler saw no GPU activity")
    return {"kernel_sum_ms": sum(e.time_range.elapsed_us() for e in device) / 1e3 / reps,
            "activities_per_call": len(device) / reps, "reps": reps,
            "names": sorted({e.name for e in device})[:40]}
