"""What a sweep can measure, behind one interface: an implementation prepares a timed callable.

An implementation turns a workload into a `Prepared` callable `forward() -> out` whose result
backpropagates; the harness times forward and `out.backward(dout)` the same way for all of them.
The op's variants and the peers both produce these; `bench.harness.registry` names them all.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from bench.harness.workloads import Workload


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
    needs: str = ""                            # what it must have to run (listed by `prefixbench variants`)
    kernel: Optional[str] = None               # a peer bound to one kernel ("fa3", "fa4"): it runs there
