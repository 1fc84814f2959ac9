"""PrefixLM attention as two varlen passes (bidirectional prefix + causal response), its variants
and kernel backends. Imports lazily: `prefixlm_attn.backends.registry` and `prefixlm_attn.masks`
load without the op (and without torch for the registry)."""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "BatchMetadata": "metadata", "InvalidLengths": "metadata", "build_batch_metadata": "metadata",
    "prefixlm_attention": "op", "DEFAULT_VARIANT": "variants", "VARIANTS": "variants", "get_variant": "variants",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"prefixlm_attn.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'prefixlm_attn' has no attribute {name!r}")


__all__ = list(_LAZY)
