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
    backend: str
    device: str            # what the worker uses ("cuda" or "cpu")


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
