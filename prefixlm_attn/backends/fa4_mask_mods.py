"""The PrefixLM mask as FA4 `mask_mod`s (CuTe DSL, compiled into the kernel at first call).

A mask_mod gets (batch, head, q_idx, kv_idx, seqlen_info, aux_tensors) with positions inside the
sequence and returns whether the pair is kept; passing one turns FA4's own causal masking off. The
predicate is masks.py's: same document, and key in the prefix or not after the query. Imported only when
an FA4 single pass runs (it needs the CuTe DSL). The functions are module-level objects so FA4's compile
cache (keyed by a hash of the callable) compiles each once per shape.
"""
from __future__ import annotations

import cutlass
import cutlass.cute as cute
from flash_attn.cute import utils


@cute.jit
def packed_prefixlm(batch, head, m_idx, n_idx, seqlen_info, aux_tensors):
    """One packed sequence: aux_tensors = [document of each token, absolute row where its prefix ends]."""
    doc, prefix_end = aux_tensors[0], aux_tensors[1]
    m_doc = utils.scalar_to_ssa(doc[m_idx[0]], cutlass.Int32)
    n_doc = utils.scalar_to_ssa(doc[n_idx[0]], cutlass.Int32)
    m_end = utils.scalar_to_ssa(prefix_end[m_idx[0]], cutlass.Int32)
    return (m_doc == n_doc) & ((n_idx < m_end) | (n_idx <= m_idx))


@cute.jit
def varlen_prefixlm(batch, head, m_idx, n_idx, seqlen_info, aux_tensors):
    """Varlen: positions within each sequence; aux_tensors = [prefix length of each sequence]."""
    prefix = utils.scalar_to_ssa(aux_tensors[0][batch[0]], cutlass.Int32)
    return (n_idx < prefix) | (n_idx <= m_idx)
