"""What each kernel backend does at the edges of the varlen contract, as data (torch-free).

The reference backend mirrors one of these (`reference` = FA3's, `reference@fa4` = FA4's), so the CPU
tests exercise the same row bookkeeping and the same failure on an empty pass as each GPU kernel.
The contract probes (bench) measure the same facts on the device; docs/FA4_FACTS.md says how FA4's are measured.
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
    measured: bool = True         # False: read from the kernel's source, not yet observed on a GPU
    note: str = ""


FA3_CONTRACT = KernelContract(
    kernel="fa3", empty_backward="crash", empty_forward="noop",
    zero_key_writes_dq=True, zero_query_writes_dkdv=True,
    note="backward with max_seqlen_q=0 raises CUTLASS Error Internal and leaves the CUDA context unusable")

# Read from flash-attn-4 4.0.0b36's source (flash_attn/cute/interface.py), not yet observed on a GPU
# (docs/FA4_FACTS.md says what is to be measured and how). With max_seqlen_q == 0 the
# backward's per-query-block grids have no block (seqlen_q_rounded == 0): a launch FA4 cannot make,
# expected to raise on the host; the varlen forward schedules by total rows and per-sequence lengths,
# so an all-empty pass is expected to return having written nothing.
FA4_CONTRACT = KernelContract(
    kernel="fa4", empty_backward="raise", empty_forward="noop",
    zero_key_writes_dq=True, zero_query_writes_dkdv=True, measured=False,
    note="read from the 4.0.0b36 source: an empty backward is expected to raise (no launch), the context to "
         "live on; unmeasured on a GPU")

CONTRACTS: dict[str, KernelContract] = {c.kernel: c for c in (FA3_CONTRACT, FA4_CONTRACT)}


def backend_contract(backend_name: str) -> KernelContract:
    """The contract a named backend keeps: its own for a kernel backend, the mirrored one for the reference."""
    from prefixlm_attn.backends.registry import get_backend
    backend = get_backend(backend_name)
    mirrored = getattr(backend, "contract", None)
    return mirrored if isinstance(mirrored, KernelContract) else contract_for(backend.name)


def mirror_of(backend_name: str) -> str:
    """The reference backend that mirrors `backend_name`'s contract ("reference" for fa3, "reference@fa4" ...)."""
    from prefixlm_attn.backends.registry import resolve_backend_name
    name = resolve_backend_name(backend_name)
    if name.startswith("reference"):
        return name
    return "reference" if name == "fa3" else f"reference@{name}"


def contract_for(kernel: str) -> KernelContract:
    try:
        return CONTRACTS[kernel]
    except KeyError:
        raise ValueError(f"no recorded contract for kernel {kernel!r}; known: {', '.join(CONTRACTS)}") from None
