"""Where a command runs: the backend and device for sweep, profile and validate, looked up by capability.

No backend is named here: the registry (prefixlm_attn.backends.registry) lists them in the order `auto`
tries them, and each backend says per direction whether it runs here and why not (`Unavailable`).
`auto` on CUDA takes the first kernel backend that runs both directions and refuses when none does (a
reference figure must be asked for, never slipped in); on the CPU it is the reference.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from bench.spec.errors import UserError
from prefixlm_attn.backends import get_backend
from prefixlm_attn.backends.base import DIRECTIONS, Unavailable
from prefixlm_attn.backends.registry import BACKEND_CHOICES, auto_report, backend_names, resolve_backend_name

AUTO = BACKEND_CHOICES[0]                # "auto": the registry's first choice, not a backend


@dataclass
class Target:
    backend: str           # the run's first backend (the only one of profile and validate)
    device: str            # what the worker uses ("cuda" or "cpu")
    also: tuple[str, ...] = ()   # a sweep's further backends (the backend axis), measured in the same rounds

    @property
    def backends(self) -> tuple[str, ...]:
        return (self.backend, *self.also)


def cuda_available() -> bool:
    return torch.cuda.is_available()


def reference_name() -> str:
    """The registry's reference backend (PyTorch; runs on any device)."""
    return next(n for n in backend_names() if get_backend(n).kind == "reference")


def is_kernel(name: str) -> bool:
    return get_backend(name).kind == "kernel"


def unavailable(name: str, directions: tuple[str, ...] = DIRECTIONS) -> Optional[Unavailable]:
    """Why backend `name` cannot run one of `directions` here (None when it can)."""
    backend = get_backend(name)
    return next((why for d in directions if (why := backend.availability(d)) is not None), None)


def auto_notice(requested: "str | tuple[str, ...] | list[str]", target: Target) -> Optional[str]:
    """What `--backend auto` picked on CUDA and why it passed each earlier backend over (None otherwise)."""
    names = (requested,) if isinstance(requested, str) else tuple(requested)
    if AUTO not in names or target.device != "cuda":
        return None
    return f"prefixbench: --backend auto: {'; '.join(auto_report())}"


def resolve_target(backend: str, device: str) -> Target:
    """Backend and device: auto -> the first available kernel backend on CUDA, the reference on CPU."""
    has_cuda = cuda_available()
    if device == "auto":
        device = "cuda" if has_cuda else "cpu"
    if device not in ("cuda", "cpu"):
        raise UserError(f"--device {device!r}: choose auto, cuda or cpu")
    if device == "cuda" and not has_cuda:
        raise UserError("--device cuda: no CUDA device is visible")
    try:
        name = resolve_backend_name(backend) if device == "cuda" or backend != AUTO else reference_name()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    kind = get_backend(name).kind
    if kind == "kernel" and device == "cpu":
        raise UserError(f"--backend {name} needs --device cuda ({name} is a GPU kernel backend)")
    if kind == "kernel" and (why := unavailable(name)) is not None:
        raise UserError(f"--backend {name}: {why.reason}")
    if backend == AUTO and device == "cuda" and kind == "reference":
        raise UserError(f"--backend auto: CUDA is here but no kernel backend runs ({'; '.join(auto_report()[:-1])}); "
                        "run `prefixbench doctor` for the fix, or pass --backend reference to time the PyTorch "
                        "reference on the GPU")
    return Target(name, device)


def resolve_run_target(backends: tuple[str, ...], device: str) -> Target:
    """A sweep's backend axis, each name resolved as `resolve_target` does on the same device; two names
    that land on the same backend here are refused (each backend is measured once per round)."""
    targets = [resolve_target(b, device) for b in backends]
    names = [t.backend for t in targets]
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise UserError(f"--backend {' --backend '.join(backends)}: {twice} twice (two names of one backend here)")
    return Target(names[0], targets[0].device, tuple(names[1:]))


def kernel_of(name: str) -> str:
    """The kernel a backend runs or mirrors: 'fa3' for fa3 and the reference, 'fa4' for fa4 and reference@fa4."""
    from prefixlm_attn.backends.contracts import backend_contract
    return backend_contract(name).kernel


def backend_for_kernel(kernel: str, target: Target) -> str:
    """Where a peer that names its kernel (fa3_bidir_bound, fa4_causal_bound) runs in this run: the run's
    backend that is or mirrors that kernel; on a reference run, the reference mirroring it (the CPU stands
    in for every kernel); else the kernel backend itself (the peer is skipped with its reason when that
    backend does not run here)."""
    for name in target.backends:
        if kernel_of(name) == kernel:
            return name
    if all(get_backend(n).kind == "reference" for n in target.backends):
        from prefixlm_attn.backends.contracts import mirror_of
        return mirror_of(kernel)
    return kernel
