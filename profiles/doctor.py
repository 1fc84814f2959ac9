"""Can a GPU sweep run here? Each check says ok (with what it found) or the fix, in one line.

Checks run in order and never raise: a check that crashes is a failed check with the error. The
sweep needs torch with CUDA, a Hopper GPU, a loadable FA3 that passes a tiny forward + backward,
and a writable output folder; nvtx, nsys, ncu and NVML only serve `profile` and the clock records,
so they are reported but do not decide the verdict.
"""
from __future__ import annotations

import ctypes
import glob
import importlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

FA3_ROUTE = "scripts/build_fa3.sh --source <flash-attention checkout> --out DIR, then export PYTHONPATH=DIR"
LIBDW_FIX = ("apt-get install libdw1, or dpkg -x the libdw1 and libelf1 .debs into D and add "
             "D/usr/lib/x86_64-linux-gnu to LD_LIBRARY_PATH")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str            # what was found when ok; the fix, in one line, when not
    required: bool = True  # needed for a GPU sweep (else only for profiles or clock records)


def check_torch() -> Check:
    import torch
    if torch.version.cuda is None:
        return Check("torch", False, f"torch {torch.__version__} has no CUDA: install a CUDA build "
                     "(pip install torch --index-url https://download.pytorch.org/whl/cu130)")
    return Check("torch", True, f"torch {torch.__version__}, CUDA {torch.version.cuda}")


def check_gpu() -> Check:
    import torch
    if not torch.cuda.is_available():
        return Check("gpu", False, "no CUDA device visible: check the driver (nvidia-smi) and CUDA_VISIBLE_DEVICES")
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    found = f"{props.name} (sm_{props.major}{props.minor}), {torch.cuda.device_count()} visible"
    if props.major != 9:
        return Check("gpu", False, f"{found}: FA3 needs a Hopper GPU (sm_90); elsewhere only --backend reference runs")
    return Check("gpu", True, found)


def check_fa3_loads() -> Check:
    try:
        module = importlib.import_module("flash_attn_3._C")
    except Exception as exc:  # noqa: BLE001 - ImportError, OSError (undefined symbol), ...
        return Check("fa3", False, f"flash_attn_3 does not load ({type(exc).__name__}: {str(exc)[:120]}); "
                     f"build it: {FA3_ROUTE}")
    return Check("fa3", True, f"flash_attn_3 from {Path(module.__file__).parent}")


def check_fa3_build() -> Check:
    from prefixlm_attn.backends.fa3_build import check_supported, fa3_build_info
    info = fa3_build_info()
    if "error" in info:
        return Check("fa3 build", False, info["error"])
    if not info.get("backward", True):
        return Check("fa3 build", False, "this FA3 build has no backward pass: rebuild with scripts/build_fa3.sh")
    found = (f"head dims {','.join(map(str, info['head_dims']))}, {','.join(info['dtypes'])}"
             f"{', commit ' + str(info['fa3_commit']) if info.get('fa3_commit') else ''}")
    problem = check_supported("bfloat16", 128, info)   # the default suite's configuration
    return Check("fa3 build", problem is None, problem or found)


def check_fa3_runs(device: str = "cuda", backend: str = "fa3") -> Check:
    """A tiny forward + backward through both passes against the dense reference (other arguments: tests)."""
    import torch
    from prefixlm_attn import build_batch_metadata, prefixlm_attention
    from prefixlm_attn.backends import BACKENDS
    from prefixlm_attn.dense_reference import dense_reference_grads
    if not BACKENDS[backend].available():
        return Check("fa3 fwd+bwd", False, "needs CUDA and a loadable FA3 (see above)")
    prefix, causal, budget = [96, 64], [32, 64], 320
    g = torch.Generator().manual_seed(0)
    q, k, v, dout = (torch.randn(budget, 2, 128, generator=g).to(device, torch.bfloat16) for _ in range(4))
    for t in (q, k, v):
        t.requires_grad_(True)
    out = prefixlm_attention(q, k, v, build_batch_metadata(prefix, causal, budget, device=device), backend=backend)
    out.backward(dout)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    ref = dense_reference_grads(q.detach().cpu(), k.detach().cpu(), v.detach().cpu(), dout.cpu(), prefix, causal,
                                dtype=torch.float64)
    got = (out, q.grad, k.grad, v.grad)
    worst = max(((a.detach().cpu().double() - b.double()).norm() / b.double().norm().clamp_min(1.0)).item()
                for a, b in zip(got, ref))
    if not worst < 2e-2:
        return Check("fa3 fwd+bwd", False, f"relative error {worst:.2e} against the dense reference: "
                     "rebuild FA3 at the pinned commit (scripts/build_fa3.sh)")
    return Check("fa3 fwd+bwd", True, f"bf16, head dim 128, both passes: relative error {worst:.1e}")


def check_output(out_dir: Path) -> Check:
    """Writes and removes one file in `out_dir` (or checks its nearest existing parent), creating nothing."""
    target = out_dir
    while not target.exists() and target != target.parent:
        target = target.parent
    if not target.is_dir():
        return Check("output", False, f"{target} is not a folder: choose --out elsewhere")
    try:
        with tempfile.NamedTemporaryFile(dir=target, prefix=".prefixbench-doctor-") as f:
            f.write(b"ok")
            f.flush()
    except OSError as exc:
        return Check("output", False, f"cannot write in {target} ({exc.strerror}): choose a writable --out")
    return Check("output", True, f"{out_dir} writable")


def check_nvtx() -> Check:
    try:
        importlib.import_module("nvtx")
    except ImportError:
        return Check("nvtx", False, "no nvtx module (profile ranges fall back to torch's): pip install nvtx",
                     required=False)
    return Check("nvtx", True, "nvtx importable", required=False)


def _can_load(library: str) -> bool:
    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


def check_nsys(find: Optional[Callable[[], Optional[str]]] = None,
               can_load: Callable[[str], bool] = _can_load) -> Check:
    if find is None:
        from profiles.nsys import find_nsys as find
    nsys = find()
    if nsys is None:
        return Check("nsys", False, "no nsys: install Nsight Systems (or pass --nsys PATH to profile)", required=False)
    if "/nsight-compute/" in nsys:   # Nsight Compute's bundled copy: its importer needs libdw
        importers = glob.glob(str(Path(nsys).parents[1] / "*" / "QdstrmImporter"))
        if not importers:
            return Check("nsys", False, f"{nsys} has no QdstrmImporter beside it: install Nsight Systems",
                         required=False)
        if not can_load("libdw.so.1"):
            return Check("nsys", False, f"{nsys}: its QdstrmImporter needs libdw.so.1: {LIBDW_FIX}", required=False)
    return Check("nsys", True, nsys, required=False)


def check_ncu(find: Optional[Callable[[], Optional[str]]] = None) -> Check:
    if find is None:
        from profiles.ncu import find_ncu as find
    ncu = find()
    if ncu is None:
        return Check("ncu", False, "no ncu: install Nsight Compute (or pass --ncu PATH to profile)", required=False)
    return Check("ncu", True, ncu, required=False)


def check_nvml() -> Check:
    try:
        pynvml = importlib.import_module("pynvml")
        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
    except ImportError:
        return Check("nvml", False, "no pynvml (clocks come from nvidia-smi, slower): pip install nvidia-ml-py",
                     required=False)
    except Exception as exc:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return Check("nvml", False, f"NVML unusable ({str(exc)[:80]}): check the NVIDIA driver", required=False)
    return Check("nvml", True, f"driver {version.decode() if isinstance(version, bytes) else version}",
                 required=False)


def diagnose(out_dir: Path) -> tuple[list[Check], bool]:
    """Every check, and whether a GPU sweep can run (all required checks ok)."""
    steps: list[tuple[str, bool, Callable[[], Check]]] = [
        ("torch", True, check_torch), ("gpu", True, check_gpu), ("fa3", True, check_fa3_loads),
        ("fa3 build", True, check_fa3_build), ("fa3 fwd+bwd", True, check_fa3_runs),
        ("output", True, lambda: check_output(out_dir)), ("nvtx", False, check_nvtx),
        ("nsys", False, check_nsys), ("ncu", False, check_ncu), ("nvml", False, check_nvml),
    ]
    checks = []
    for name, required, step in steps:
        try:
            checks.append(step())
        except Exception as exc:  # noqa: BLE001 - a broken check is a failed check, not a crash
            checks.append(Check(name, False, f"check failed: {type(exc).__name__}: {str(exc)[:160]}", required))
    return checks, all(c.ok for c in checks if c.required)


def format_check(check: Check) -> str:
    status = "ok" if check.ok else ("FAIL" if check.required else "warn")
    return f"{status:<5}{check.name:<13}{check.detail}"


def verdict_line(can_sweep: bool) -> str:
    return ("a GPU sweep can run here" if can_sweep
            else "a GPU sweep cannot run here: fix the FAIL lines (warn lines only affect profiles and clock records)")

