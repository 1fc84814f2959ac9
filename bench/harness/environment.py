"""Environment capture: what the numbers depend on (versions, GPU, clocks, the code's revision).

`environment` runs inside the worker that measures (it reads the device that worker sees);
`gpu_clocks` (bench.harness.gpu_clocks: NVML in-process, nvidia-smi as fallback) says, before and after timing, whether the GPU ran at full clocks;
`write_env_file` keeps the first run's env.json on --resume and adds each later run's beside it.
"""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Optional

import torch

from bench.harness.gpu_clocks import gpu_clocks
from bench.results.io import write_json


def environment(backend: str, device: str, also: tuple[str, ...] = ()) -> dict[str, Any]:
    """What the numbers depend on, read inside the worker that measures; `also`: a sweep's further
    backends (the backend axis, peers bound to another kernel)."""
    env: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                           "cuda": torch.version.cuda, "backend": backend, "device": device,
                           "hostname": platform.node()}
    if also:
        env["backends"] = [backend, *also]
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        env.update(gpu=props.name, gpu_index=int(visible.split(",")[0]) if visible and visible.split(",")[0].isdigit()
                   else torch.cuda.current_device(), cuda_visible_devices=visible,
                   sm_count=props.multi_processor_count,
                   gpu_memory_bytes=props.total_memory, capability=f"{props.major}.{props.minor}")
        env.update(gpu_clocks())
    from prefixlm_attn.backends import get_backend
    for name in (backend, *also):                # each backend's package, version and build, under its name
        try:
            env[name] = get_backend(name).version_info()
        except Exception as exc:  # noqa: BLE001 - a backend that cannot say its version still runs
            env[name] = {"version_error": str(exc)[:200]}
    return env


VERSION_KEYS = ("package", "version", "mirrors")


def backend_version(env: dict[str, Any], backend: str) -> Optional[dict[str, str]]:
    """A record's `backend_version`: the package and version (and, for the reference, the kernel it
    mirrors) of env.json's entry for that backend; None when the environment could not be read."""
    info = env.get(backend)
    if not isinstance(info, dict):
        return None
    out = {k: str(info[k]) for k in VERSION_KEYS if info.get(k) is not None}
    return out or None


def git_revision() -> Optional[str]:
    """PREFIXBENCH_GIT_REVISION when set (a copied tree may carry stale git metadata: the person who
    copied it knows the revision better), else `git rev-parse HEAD` (+ `-dirty`), else None."""
    stated = os.environ.get("PREFIXBENCH_GIT_REVISION")
    if stated:
        return stated
    try:
        root = Path(__file__).resolve().parents[2]
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        if len(rev) != 40:           # not a git checkout (e.g. a copied tree): say so rather than guess
            return None
        return rev + ("-dirty" if dirty else "")
    except Exception:  # noqa: BLE001
        return None


def write_env_file(out_dir: Path, env: dict[str, Any], rank: int = 0) -> Path:
    """env.json (rank 0) or env-rank-R.json; --resume keeps the first run's file and adds this one's."""
    name = "env.json" if rank == 0 else f"env-rank-{rank}.json"
    path = Path(out_dir) / name
    n = 1
    while path.exists():
        path = Path(out_dir) / f"{Path(name).stem}-resume-{n}.json"
        n += 1
    return write_json(path, env)
