"""GPU activity of a call as the torch profiler (CUPTI) sees it: the reference GPU time is checked against.

The sum of kernel (and memset/memcpy) durations excludes the gaps between them, so a clock that
measures GPU time alone should land on it; one that waits for the host lands above it.
"""
from __future__ import annotations

from typing import Callable

import torch

ANNOTATIONS = ("gpu_user_annotation", "user_annotation")


def device_activities(prof, exclude: tuple[str, ...] = ()) -> list:
    """The GPU activities (kernels, memsets, memcpys) of a finished profile: ranges on the GPU row and
    `exclude`d kernel names left out."""
    from torch.autograd import DeviceType
    return [e for e in prof.events() if e.device_type == DeviceType.CUDA   # not ranges on the GPU row:
            and not getattr(e, "is_user_annotation", False)            # they would count kernels twice
            and getattr(e, "activity_type", None) not in ANNOTATIONS
            and not any(x in e.name for x in exclude)]


def device_activity_ms(prof, exclude: tuple[str, ...] = ()) -> tuple[float, int, list[str]]:
    """Summed device-activity time of a finished profile: total ms, number of activities, their names."""
    device = device_activities(prof, exclude)
    return (sum(e.time_range.elapsed_us() for e in device) / 1e3, len(device),
            sorted({e.name for e in device})[:40])


def profiler_kernel_ms(call: Callable[[], None], reps: int = 10, warmup: int = 2) -> dict[str, float]:
    """Mean per call of the summed device-activity time, over `reps` calls each followed by a synchronize."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(warmup):
        call()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            call()
            torch.cuda.synchronize()
    total_ms, count, names = device_activity_ms(prof)
    if not count:
        raise RuntimeError("the profiler saw no GPU activity")
    return {"kernel_sum_ms": total_ms / reps, "activities_per_call": count / reps, "reps": reps, "names": names}
