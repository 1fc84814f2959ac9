"""What a sweep can measure: the op's variants and peer implementations, behind one interface.

An implementation turns a workload into a `Prepared` callable `forward() -> out` whose result
backpropagates; the harness times forward and `out.backward(dout)` the same way for all of them.
Variants come from the op's registry; peers (other ways to compute the same attention) register in
`bench.peers`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from bench.errors import UserError
from bench.inputs import Workload
from prefixlm_attn.op import prefixlm_attention
from prefixlm_attn.variants import VARIANTS, auto_choice_for


@dataclass
class Prepared:
    forward: Callable[[], torch.Tensor]
    setup_ms: Optional[float] = None          # one-off cost outside the timed call (e.g. a block mask)
    notes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Implementation:
    name: str
    kind: str                                  # "variant" | "peer"
    description: str
    prepare: Callable[[Workload, str], Prepared]   # (workload, backend) -> Prepared
    byte_model: Optional[Callable] = None


def _variant_impl(name: str) -> Implementation:
    def prepare(w: Workload, backend: str) -> Prepared:
        notes = {"auto_choice": auto_choice_for(w.q, w.meta, backend).as_dict()} if name == "auto" else {}
        return Prepared(lambda: prefixlm_attention(w.q, w.k, w.v, w.meta, variant=name, backend=backend),
                        notes=notes)
    v = VARIANTS[name]
    return Implementation(name, "variant", v.description, prepare, v.byte_model)


@functools.cache
def registry() -> dict[str, Implementation]:
    """Every implementation by name, built once per process (read-only: callers look names up)."""
    from bench.peers import PEERS      # here, not at the top: bench.peers imports this module
    return {**{name: _variant_impl(name) for name in VARIANTS}, **PEERS}


def peer_names() -> list[str]:
    return [n for n, i in registry().items() if i.kind == "peer"]


def check_names(variants: tuple[str, ...], peers: tuple[str, ...]) -> None:
    for v in variants:
        if v not in VARIANTS:
            raise UserError(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    known = peer_names()
    for p in peers:
        if p not in known:
            raise UserError(f"unknown peer {p!r}; choose from {', '.join(known) or '(none registered)'}")
