"""Every implementation a sweep can measure, by name: the op's variants, then the peers.

It sits above both (`prefixlm_attn.variants` and `bench.harness.peers`), so neither imports the other.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from bench.spec import grid
from bench.spec.errors import UserError
from bench.harness.implementations import Implementation, Prepared
from bench.harness.peers import PEERS
from bench.harness.peers.base import PeerUnsupported
from bench.harness.target import Target, backend_for_kernel
from bench.harness.transformer_block import block_implementation
from bench.spec.names import BLOCK_PREFIX
from bench.harness.workloads import Workload
from prefixlm_attn.op import prefixlm_attention
from prefixlm_attn.variants import DEFAULT_VARIANT, VARIANTS, auto_choice_for, variant_availability


def _variant_impl(name: str) -> Implementation:
    def prepare(w: Workload, backend: str) -> Prepared:
        why = variant_availability(name, backend, w.q.shape[-1])
        if why is not None:     # a variant without a kernel here: recorded as skipped, with the reason
            raise PeerUnsupported(why.reason)
        notes = {"auto_choice": auto_choice_for(w.q, w.meta, backend).as_dict()} if name == "auto" else {}
        return Prepared(lambda: prefixlm_attention(w.q, w.k, w.v, w.meta, variant=name, backend=backend),
                        notes=notes)
    v = VARIANTS[name]
    return Implementation(name, "variant", v.description, prepare, v.byte_model)


@functools.cache
def registry() -> dict[str, Implementation]:
    """Every implementation by name, built once per process (read-only: callers look names up)."""
    return {**{name: _variant_impl(name) for name in VARIANTS}, **PEERS,
            **{f"{BLOCK_PREFIX}{name}": block_implementation(name) for name in VARIANTS}}


@dataclass(frozen=True)
class PlannedRun:
    """One implementation of a sweep as the worker runs it: its record name, the registry's name, and the
    resolved backend it runs on."""
    label: str
    name: str
    backend: str


def run_plan(suite: grid.Suite, target: Target) -> list[PlannedRun]:
    """The suite's implementations on the resolved backends: variants and blocks on their axis value, a
    peer bound to a kernel where that kernel runs (`backend_for_kernel`), any other peer on the first."""
    resolved = dict(zip(suite.backends, target.backends))
    out = []
    for p in suite.planned():
        if p.backend is not None:
            backend = resolved.get(p.backend, target.backend)
        else:
            kernel = registry()[p.name].kernel
            backend = backend_for_kernel(kernel, target) if kernel else target.backend
        out.append(PlannedRun(p.label, p.name, backend))
    return out


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


def check_suite(suite: grid.Suite) -> None:
    """The grid's checks (bench.spec.grid.check_suite) with this registry's names."""
    grid.check_suite(suite, check_names)


def implementation_listing() -> list[dict]:
    """`prefixbench variants`: each variant's contract, then each peer with what it needs to run."""
    variants = [{"kind": "variant", **v.summary(), "default": v.name == DEFAULT_VARIANT} for v in VARIANTS.values()]
    peers = [{"kind": "peer", "name": p.name, "description": p.description, "needs": p.needs}
             for p in registry().values() if p.kind == "peer"]
    return variants + peers
