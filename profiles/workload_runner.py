"""The profiled program: warm-up, then N annotated repetitions per variant of one configuration.

Run directly under a profiler (`nsys profile ... python -m profiles.workload_runner ...`) or called
in-process (`run_profiled`, the torch.profiler path). The measured region is bracketed by
cudaProfilerStart/Stop so `nsys --capture-range=cudaProfilerApi` records only the repetitions,
each wrapped in "config:<id>" > "rep:<variant>:<i>" > the op's phase ranges.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from bench.spec.grid import Config
from bench.harness.registry import registry
from bench.harness.workloads import Workload, build_workload
from prefixlm_attn.backends.registry import kernel_backend_names
from prefixlm_attn.phases import PhaseObserver, observing
from profiles.nvtx_ranges import (NvtxEmitter, NvtxPhaseObserver, config_range_name, measure_nvtx_overhead,
                                  nvtx_range, rep_range_name)

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ProfiledRun:
    workload: Workload
    calls: dict[str, Callable[[], torch.Tensor]]
    emitter: Optional[NvtxEmitter] = None
    observers: list[PhaseObserver] = field(default_factory=list)

    @property
    def cuda(self) -> bool:
        return self.workload.device.type == "cuda"

    def run_rep(self, variant: str) -> None:
        self.workload.clear_grads()
        self.calls[variant]().backward(self.workload.dout)

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()


def prepare_run(config: Config, variants: Sequence[str], backend: str, device: str,
                nvtx: bool = True) -> ProfiledRun:
    impls = registry()
    workload = build_workload(config, device)
    calls = {v: impls[v].prepare(workload, backend).forward for v in variants}
    emitter = NvtxEmitter() if nvtx else None
    observers: list[PhaseObserver] = [NvtxPhaseObserver(emitter)] if emitter else []
    return ProfiledRun(workload, calls, emitter, observers)


def warm_up(run: ProfiledRun, reps: int) -> None:
    for _ in range(reps):
        for variant in run.calls:
            run.run_rep(variant)
    run.sync()


def measured_reps(run: ProfiledRun, reps: int, range_hook: Optional[Callable[[str], object]] = None) -> None:
    """`reps` rounds, every variant once per round, inside config/rep ranges (plus `range_hook`'s
    context managers, e.g. torch.profiler.record_function) with every phase observer subscribed."""
    with ExitStack() as outer:
        cfg_name = config_range_name(run.workload.label)
        outer.enter_context(nvtx_range(run.emitter, cfg_name))
        if range_hook:
            outer.enter_context(range_hook(cfg_name))
        for obs in run.observers:
            outer.enter_context(observing(obs))
        for i in range(reps):
            for variant in run.calls:
                name = rep_range_name(variant, i)
                with ExitStack() as inner:
                    inner.enter_context(nvtx_range(run.emitter, name))
                    if range_hook:
                        inner.enter_context(range_hook(name))
                    run.run_rep(variant)
        run.sync()


def overhead_for(run: ProfiledRun, variant: str, reps: int) -> dict:
    result = measure_nvtx_overhead(lambda: run.run_rep(variant), reps=reps, cuda=run.cuda, emitter=run.emitter)
    return {"variant": variant, **result}


def run_profiled(config: Config, variants: Sequence[str], backend: str, device: str, reps: int,
                 warmup: int = 2, nvtx: bool = True, cuda_profiler_api: bool = False,
                 overhead_reps: int = 0) -> dict:
    """The whole profiled program; returns what it did (written to --meta-json).

    The NVTX overhead is measured after cudaProfilerStop: the first push to the domain registers it,
    and that registration must fall inside the nsys capture range for the domain filter to work.
    """
    run = prepare_run(config, variants, backend, device, nvtx)
    warm_up(run, warmup)
    use_api = cuda_profiler_api and run.cuda
    if use_api:
        torch.cuda.cudart().cudaProfilerStart()
    try:
        measured_reps(run, reps)
    finally:
        if use_api:
            torch.cuda.synchronize()
            torch.cuda.cudart().cudaProfilerStop()
    overhead = overhead_for(run, variants[0], overhead_reps) if overhead_reps > 0 and nvtx else None
    return {"config": config.as_dict(), "config_id": config.config_id, "variants": list(variants),
            "backend": backend, "device": device, "reps": reps, "warmup": warmup,
            "nvtx_backend": run.emitter.backend if run.emitter else None,
            "nvtx_domain": run.emitter.range_domain if run.emitter else None,
            "nvtx_overhead": overhead}


def runner_command(config: Config, variants: Sequence[str], backend: str, device: str, reps: int,
                   warmup: int = 2, overhead_reps: int = 0, meta_json: Optional[Path] = None) -> list[str]:
    """argv that runs this module in a fresh interpreter (the program a profiler launches), always
    with NVTX ranges and cudaProfilerStart/Stop: both nsys and ncu filter on them."""
    argv = [sys.executable, "-m", "profiles.workload_runner", "--config-json", json.dumps(config.as_dict()),
            "--variants", ",".join(variants), "--backend", backend, "--device", device,
            "--reps", str(reps), "--warmup", str(warmup), "--overhead-reps", str(overhead_reps),
            "--nvtx", "--cuda-profiler-api"]
    argv += ["--meta-json", str(meta_json)] if meta_json else []
    return argv


def runner_env() -> dict[str, str]:
    """The environment with this checkout on PYTHONPATH, so `-m profiles.workload_runner` resolves."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def main(argv: Optional[Sequence[str]] = None) -> None:
    p = argparse.ArgumentParser(prog="python -m profiles.workload_runner", description=__doc__)
    p.add_argument("--config-json", required=True, help="Config fields as JSON (bench.spec.grid.Config).")
    p.add_argument("--variants", required=True, help="Comma-separated implementation names.")
    p.add_argument("--backend", default=kernel_backend_names()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--nvtx", action="store_true", help="Emit NVTX ranges (phases, config, reps).")
    p.add_argument("--cuda-profiler-api", action="store_true",
                   help="Bracket the measured reps with cudaProfilerStart/Stop.")
    p.add_argument("--overhead-reps", type=int, default=0, help="Also measure NVTX overhead (0: skip).")
    p.add_argument("--meta-json", type=Path, help="Write what ran (and the NVTX overhead) here.")
    args = p.parse_args(argv)
    config = Config(**json.loads(args.config_json))
    meta = run_profiled(config, [v for v in args.variants.split(",") if v], args.backend, args.device,
                        args.reps, args.warmup, args.nvtx, args.cuda_profiler_api, args.overhead_reps)
    if args.meta_json:
        args.meta_json.write_text(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
