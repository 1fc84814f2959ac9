"""Kernel backends behind one contract (base.py), listed once in registry.py.

Imports lazily: `import prefixlm_attn.backends.registry` (backend names for a CLI's --help) loads no torch.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

_LAZY = {
    "BACKEND_CHOICES": "registry", "auto_report": "registry", "backend_names": "registry",
    "get_backend": "registry", "kernel_backend_names": "registry", "resolve_backend_name": "registry",
    "KernelBackend": "base", "KernelCrash": "base", "Unavailable": "base", "is_device_dead_error": "base",
    "FA3Backend": "fa3", "FA4Backend": "fa4", "ReferenceBackend": "reference",
}


class _Backends(Mapping):
    """`BACKENDS[name]`: the registry's backend instances by name, built on first lookup."""

    def __getitem__(self, name: str) -> Any:
        from prefixlm_attn.backends.registry import backend_names, get_backend
        if name not in backend_names():
            raise KeyError(name)
        return get_backend(name)

    def __iter__(self) -> Iterator[str]:
        from prefixlm_attn.backends.registry import backend_names
        return iter(backend_names())

    def __len__(self) -> int:
        from prefixlm_attn.backends.registry import backend_names
        return len(backend_names())


BACKENDS = _Backends()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"prefixlm_attn.backends.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'prefixlm_attn.backends' has no attribute {name!r}")


__all__ = ["BACKENDS", *_LAZY]
