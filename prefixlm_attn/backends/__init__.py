"""Kernel backends behind one contract; `get_backend("auto")` picks fa3 when it loads."""
from __future__ import annotations

from prefixlm_attn.backends.base import KernelBackend, KernelCrash, is_device_dead_error
from prefixlm_attn.backends.fa3 import FA3Backend
from prefixlm_attn.backends.reference import ReferenceBackend

BACKENDS: dict[str, KernelBackend] = {"fa3": FA3Backend(), "reference": ReferenceBackend()}


def resolve_backend_name(name: str) -> str:
    """'auto' -> 'fa3' when FA3 and CUDA are there, else 'reference'."""
    if name == "auto":
        return "fa3" if BACKENDS["fa3"].available() else "reference"
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from auto, {', '.join(BACKENDS)}")
    return name


def get_backend(name: str) -> KernelBackend:
    return BACKENDS[resolve_backend_name(name)]


__all__ = ["BACKENDS", "KernelBackend", "KernelCrash", "get_backend", "resolve_backend_name",
           "is_device_dead_error"]
