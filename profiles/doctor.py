"""Can a GPU sweep run here? Each check says ok (with what it found) or the fix, in one line.

Checks run in order and never raise: a check that crashes is a failed check with the error. The
sweep needs torch with CUDA, a Hopper GPU, at least one kernel backend whose checks all pass (FA3: it
loads, its build covers the default shape, a tiny forward + backward matches the dense reference;
FA4: it imports, its kernels compile at first call (the seconds that takes are reported), a tiny
forward + backward of each form matches the dense reference), and a writable output folder; nvtx,
nsys, ncu and NVML only serve `profile` and the clock records, so they are reported but do not decide
the verdict.
"""
from __future__ import annotations

import ctypes
import glob
import importlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

FA3_ROUTE = ("install it from flash-attention's own hopper/ folder as that project's README says, or put an "
             "existing build's folder on PYTHONPATH")
FA4_ROUTE = "pip install -e '.[fa4]' (flash-attn-4, the pinned version)"
# the checks of each kernel backend: a sweep needs every check of at least one of them
KERNEL_CHECKS = {"fa3": ("fa3", "fa3 build", "fa3 fwd+bwd"), "fa4": ("fa4", "fa4 compile", "fa4 fwd+bwd")}
TOLERANCE = 2e-2     # relative error of bf16 against the float64 dense reference
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
                     f"{FA3_ROUTE}")
    return Check("fa3", True, f"flash_attn_3 from {Path(module.__file__).parent}")


def check_fa3_build() -> Check:
    from prefixlm_attn.backends.fa3_build import check_supported, fa3_build_info
    info = fa3_build_info()
    if "error" in info:
        return Check("fa3 build", False, info["error"])
    if not info.get("backward", True):
        return Check("fa3 build", False, "this FA3 build has no backward pass (FLASHATTENTION_DISABLE_BACKWARD): "
                     f"reinstall it without that flag; {FA3_ROUTE}")
    found = (f"head dims {','.join(map(str, info['head_dims']))}, {','.join(info['dtypes'])}"
             f"{', commit ' + str(info['fa3_commit']) if info.get('fa3_commit') else ''}")
    problem = check_supported("bfloat16", 128, info)   # the default suite's configuration
    return Check("fa3 build", problem is None, problem or found)


def _tiny_case(device: str):
    import torch
    from prefixlm_attn import build_batch_metadata
    prefix, causal, budget = [96, 64], [32, 64], 320
    g = torch.Generator().manual_seed(0)
    q, k, v, dout = (torch.randn(budget, 2, 128, generator=g).to(device, torch.bfloat16) for _ in range(4))
    return prefix, causal, build_batch_metadata(prefix, causal, budget, device=device), (q, k, v, dout)


def tiny_fwd_bwd_error(backend: str, variant: str, device: str = "cuda") -> tuple[float, float]:
    """(worst relative error of out/dq/dk/dv against the float64 dense reference, wall seconds) of one
    forward + backward of `variant` on `backend` for a tiny batch."""
    import time

    import torch
    from prefixlm_attn import prefixlm_attention
    from prefixlm_attn.dense_reference import dense_reference_grads
    prefix, causal, meta, (q, k, v, dout) = _tiny_case(device)
    q, k, v = (t.clone().requires_grad_(True) for t in (q, k, v))
    start = time.perf_counter()
    out = prefixlm_attention(q, k, v, meta, variant=variant, backend=backend)
    out.backward(dout)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    ref = dense_reference_grads(q.detach().cpu(), k.detach().cpu(), v.detach().cpu(), dout.cpu(), prefix, causal,
                                dtype=torch.float64)
    got = (out, q.grad, k.grad, v.grad)
    worst = max(((a.detach().cpu().double() - b.double()).norm() / b.double().norm().clamp_min(1.0)).item()
                for a, b in zip(got, ref))
    return worst, seconds


def check_fa3_runs(device: str = "cuda", backend: str = "fa3") -> Check:
    """A tiny forward + backward through both passes against the dense reference (other arguments: tests)."""
    from prefixlm_attn.backends import get_backend
    if not get_backend(backend).available():
        return Check("fa3 fwd+bwd", False, "needs CUDA and a loadable FA3 (see above)")
    worst, _ = tiny_fwd_bwd_error(backend, "prefix_rows_add", device)
    if not worst < TOLERANCE:
        return Check("fa3 fwd+bwd", False, f"relative error {worst:.2e} against the dense reference: "
                     f"reinstall FA3 ({FA3_ROUTE})")
    return Check("fa3 fwd+bwd", True, f"bf16, head dim 128, both passes: relative error {worst:.1e}")


def check_fa4_loads() -> Check:
    from prefixlm_attn.backends.fa4 import PINNED_VERSION, installed_version, load_interface
    try:
        load_interface()
    except Exception as exc:  # noqa: BLE001 - ImportError, a CuTe DSL that does not load, ...
        return Check("fa4", False, f"flash_attn.cute does not load ({type(exc).__name__}: {str(exc)[:100]}); "
                     f"{FA4_ROUTE}")
    found = installed_version()
    if found != PINNED_VERSION:
        return Check("fa4", False, f"flash-attn-4 {found} is installed, {PINNED_VERSION} is pinned (its entry points "
                     f"are private): {FA4_ROUTE}")
    return Check("fa4", True, f"flash-attn-4 {found}")


# the FA4 forms the variants use: two-pass varlen, and the two single-pass forms
FA4_FORMS = ("prefix_rows_add", "fa4_single_pass_sparse", "fa4_single_pass_masked")
_fa4_first_calls: dict[str, float] = {}


def check_fa4_compile(device: str = "cuda", backend: str = "fa4") -> Check:
    """The first forward + backward of each FA4 form compiles its kernels (CuTe DSL): the seconds it takes."""
    from prefixlm_attn.backends import get_backend
    from prefixlm_attn.backends.registry import compiled_kernel_count
    why = get_backend(backend).availability("backward")
    if why is not None:
        return Check("fa4 compile", False, f"needs CUDA and a loadable FA4: {why.reason}")
    for variant in FA4_FORMS:
        _, seconds = tiny_fwd_bwd_error(backend, variant, device)
        _fa4_first_calls[variant] = seconds
    kernels = compiled_kernel_count(backend)
    times = ", ".join(f"{v} {s:.1f} s" for v, s in _fa4_first_calls.items())
    return Check("fa4 compile", True, f"first call (compile) {times}; {kernels} kernels compiled")


def check_fa4_runs(device: str = "cuda", backend: str = "fa4") -> Check:
    """Each FA4 form's tiny forward + backward (compiled by now) against the dense reference."""
    from prefixlm_attn.backends import get_backend
    if not get_backend(backend).available():
        return Check("fa4 fwd+bwd", False, "needs CUDA and a loadable FA4 (see above)")
    errors = {v: tiny_fwd_bwd_error(backend, v, device) for v in FA4_FORMS}
    bad = {v: e for v, (e, _) in errors.items() if not e < TOLERANCE}
    if bad:
        return Check("fa4 fwd+bwd", False, "relative error against the dense reference: "
                     + ", ".join(f"{v} {e:.2e}" for v, e in bad.items()) + f"; {FA4_ROUTE}")
    return Check("fa4 fwd+bwd", True, "bf16, head dim 128: " + ", ".join(
        f"{v} {e:.1e} ({s * 1e3:.1f} ms warm)" for v, (e, s) in errors.items()))


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
        ("fa4", True, check_fa4_loads), ("fa4 compile", True, check_fa4_compile), ("fa4 fwd+bwd", True, check_fa4_runs),
        ("output", True, lambda: check_output(out_dir)), ("nvtx", False, check_nvtx),
        ("nsys", False, check_nsys), ("ncu", False, check_ncu), ("nvml", False, check_nvml),
    ]
    checks = []
    for name, required, step in steps:
        try:
            checks.append(step())
        except Exception as exc:  # noqa: BLE001 - a broken check is a failed check, not a crash
            checks.append(Check(name, False, f"check failed: {type(exc).__name__}: {str(exc)[:160]}", required))
    return checks, can_sweep(checks)


def usable_kernel_backends(checks: list[Check]) -> list[str]:
    """Kernel backends whose every check passed."""
    ok = {c.name for c in checks if c.ok}
    return [b for b, names in KERNEL_CHECKS.items() if set(names) <= ok]


def can_sweep(checks: list[Check]) -> bool:
    """Every required check outside the kernel backends, and every check of at least one kernel backend."""
    kernel = {n for names in KERNEL_CHECKS.values() for n in names}
    return (all(c.ok for c in checks if c.required and c.name not in kernel)
            and bool(usable_kernel_backends(checks)))


def format_check(check: Check) -> str:
    status = "ok" if check.ok else ("FAIL" if check.required else "warn")
    return f"{status:<5}{check.name:<13}{check.detail}"


def verdict_line(can_sweep: bool) -> str:
    return ("a GPU sweep can run here" if can_sweep
            else "a GPU sweep cannot run here: fix the FAIL lines (warn lines only affect profiles and clock records)")

