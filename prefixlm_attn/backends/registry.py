"""The one registry of kernel backends: name -> module, in the order `auto` tries them. Torch-free.

A new backend is one line in `_ENTRIES` and one module with a class behind the `KernelBackend`
contract (base.py). Backends are built once per process (they cache loaded kernels and, for the
reference, the mirrored dead-context state). `reference@fa4` names the reference mirroring another
kernel backend's contract (which rows each pass writes, what an empty pass does).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefixlm_attn.backends.base import KernelBackend

_ENTRIES: tuple[tuple[str, str], ...] = (
    ("fa3", "prefixlm_attn.backends.fa3:FA3Backend"),
    ("fa4", "prefixlm_attn.backends.fa4:FA4Backend"),
    ("reference", "prefixlm_attn.backends.reference:ReferenceBackend"),
)
_REFERENCE = _ENTRIES[-1][0]
_MIRROR_SEP = "@"
_instances: dict[str, "KernelBackend"] = {}


def backend_names() -> tuple[str, ...]:
    """Every backend a user can name (kernel backends, then the reference), without "auto"."""
    return tuple(name for name, _ in _ENTRIES)


def kernel_backend_names() -> tuple[str, ...]:
    return tuple(name for name, _ in _ENTRIES if name != _REFERENCE)


BACKEND_CHOICES: tuple[str, ...] = ("auto", *backend_names())


def mirror_names() -> tuple[str, ...]:
    """The reference mirroring each kernel backend whose contract it does not keep by default
    ("reference@fa4"; plain "reference" mirrors fa3): CPU stand-ins for a backend axis."""
    return tuple(f"{_REFERENCE}{_MIRROR_SEP}{k}" for k in kernel_backend_names()[1:])


def _split_mirror(name: str) -> tuple[str, str | None]:
    base, sep, contract = name.partition(_MIRROR_SEP)
    return base, (contract if sep else None)


def _check_name(name: str) -> None:
    base, contract = _split_mirror(name)
    if base not in backend_names() or (contract is not None and
                                       (base != _REFERENCE or contract not in kernel_backend_names())):
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(BACKEND_CHOICES)}")


def get_backend(name: str) -> "KernelBackend":
    """The backend behind a name ("auto" resolves first); built on first use."""
    name = resolve_backend_name(name)
    if name not in _instances:
        base, contract = _split_mirror(name)
        module, cls = dict(_ENTRIES)[base].split(":")
        factory = getattr(importlib.import_module(module), cls)
        _instances[name] = factory(contract=contract) if contract else factory()
    return _instances[name]


def resolve_backend_name(name: str) -> str:
    """'auto' -> the first kernel backend available in both directions (fa3, fa4), else 'reference'."""
    if name == "auto":
        for candidate in kernel_backend_names():
            if get_backend(candidate).available():
                return candidate
        return _REFERENCE
    _check_name(name)
    return name


def auto_report() -> list[str]:
    """One line per backend `auto` tries, in order: the one it picks, or why each earlier one was passed."""
    lines = []
    for candidate in kernel_backend_names():
        backend = get_backend(candidate)
        why = backend.availability("forward") or backend.availability("backward")
        if why is None:
            lines.append(f"{candidate}: picked")
            return lines
        lines.append(f"{candidate}: not used ({why.reason})")
    lines.append(f"{_REFERENCE}: picked (PyTorch, no kernel backend available)")
    return lines


def compiled_kernel_count(name: str) -> int | None:
    """Kernels the backend has compiled in this process (backends that compile at first call, as FA4's
    CuTe DSL); None for a backend without such a cache or before it loads. A sweep compares the count
    around its timed rounds: growth there means a shape recompiled inside them."""
    count = getattr(get_backend(name), "compile_cache_entries", None)
    return count() if callable(count) else None


__all__ = ["BACKEND_CHOICES", "auto_report", "backend_names", "compiled_kernel_count", "get_backend",
           "kernel_backend_names", "mirror_names", "resolve_backend_name"]
