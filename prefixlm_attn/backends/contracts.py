"""What each kernel backend does at the edges of the varlen contract, as data (torch-free).

The reference backend mirrors one of these (`reference` = FA3's, `reference@fa4` = FA4's), so the CPU
tests exercise the same row bookkeeping and the same failure on an empty pass as each GPU kernel.
The contract probes (bench) measure the same facts on the device; results/h100/fa4_facts/ holds FA4's.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KernelContract:
    kernel: str
    # backward with max_seqlen_q == 0: "crash" (the context dies, as FA3's CUTLASS error),
    # "raise" (a Python error, the context lives on), "noop" (returns, writes nothing)
    empty_backward: str
    # forward with max_seqlen_q == 0: "noop" or "raise"
    empty_forward: str
    # a sequence with queries but no keys: its dq rows are written (zero)
    zero_key_writes_dq: bool
    # a sequence with keys but no queries: its dk/dv rows are written (zero)
    zero_query_writes_dkdv: bool
    # the backward writes dq of rows outside every sequence (padding past the last cu_seqlens)
    writes_padding: bool = False
    note: str = ""


FA3_CONTRACT = KernelContract(
    kernel="fa3", empty_backward="crash", empty_forward="noop",
    zero_key_writes_dq=True, zero_query_writes_dkdv=True,
    note="backward with max_seqlen_q=0 raises CUTLASS Error Internal and leaves the CUDA context unusable")

# Measured on an H100 with flash-attn-4 4.0.0b36 (results/h100/fa4_facts/README.md).
FA4_CONTRACT = KernelContract(
    kernel="fa4", empty_backward="noop", empty_forward="noop",
    zero_key_writes_dq=True, zero_query_writes_dkdv=True,
    note="an empty pass (max_seqlen_q=0) returns without error and without a dead context")

CONTRACTS: dict[str, KernelContract] = {c.kernel: c for c in (FA3_CONTRACT, FA4_CONTRACT)}


def contract_for(kernel: str) -> KernelContract:
    try:
        return CONTRACTS[kernel]
    except KeyError:
        raise ValueError(f"no recorded contract for kernel {kernel!r}; known: {', '.join(CONTRACTS)}") from None
