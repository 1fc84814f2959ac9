"""PrefixLM attention as two varlen passes (bidirectional prefix + causal response), its variants
and kernel backends."""
from prefixlm_attn.metadata import BatchMetadata, InvalidLengths, build_batch_metadata
from prefixlm_attn.op import prefixlm_attention
from prefixlm_attn.variants import DEFAULT_VARIANT, VARIANTS, get_variant

__all__ = [
    "BatchMetadata", "InvalidLengths", "build_batch_metadata", "prefixlm_attention",
    "DEFAULT_VARIANT", "VARIANTS", "get_variant",
]
