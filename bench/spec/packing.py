"""How sequences drawn from a distribution fill a token budget, the way a packing data loader does.

Torch-free: the parent packs each configuration once and hands the worker the batch as data. A
sequence longer than the whole budget cannot be placed; the batch counts those (`unplaced`) and
`budget_notice` says, before a sweep starts, when a user file's rows do not fit the budget, because
the sample measured is then not the user's distribution.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from bench.spec.distributions import DEFAULT_CONTEXT, MAX_TOKENS, Distribution, get_distribution
from bench.spec.errors import UserError
from bench.spec.pairs import attended_pairs


@dataclass(frozen=True)
class PackedBatch:
    prefix_lens: tuple[int, ...]
    causal_lens: tuple[int, ...]
    token_budget: int
    unplaced: int = 0                # drawn sequences longer than the whole budget, skipped

    @property
    def total_tokens(self) -> int:
        return sum(self.prefix_lens) + sum(self.causal_lens)


def pack(distribution: Distribution, token_budget: int, seed: int, context: int = DEFAULT_CONTEXT,
         max_misses: int = 16) -> PackedBatch:
    """Greedy first-fit over a seeded stream: take each sequence that fits the remaining budget;
    stop when the budget is full or `max_misses` sequences in a row did not fit (the rest is padding).
    A sequence longer than the context or the budget is refused (a user file's rows are measured
    as they are, never cut); a `batches:` distribution gives its batch exactly.
    """
    if distribution.batch is not None:
        prefix_b, causal_b = distribution.batch
        total = sum(prefix_b) + sum(causal_b)
        if total > token_budget:
            raise UserError(f"distribution {distribution.name!r}: the batch holds {total} tokens, more than "
                            f"--tokens {token_budget}")
        longest = max(p + c for p, c in zip(prefix_b, causal_b))
        if longest > context:
            raise UserError(f"distribution {distribution.name!r}: a sequence of {longest} tokens is longer "
                            f"than --context {context}")
        return PackedBatch(prefix_b, causal_b, token_budget)
    if token_budget > MAX_TOKENS:
        raise UserError(f"--tokens {token_budget}: more than {MAX_TOKENS}")
    rng = random.Random(f"{distribution.id_key}/{token_budget}/{seed}")
    prefix: list[int] = []
    causal: list[int] = []
    used = misses = unplaced = 0
    cap = min(context, token_budget)
    while used < token_budget and misses < max_misses:
        p, c = distribution.draw(rng, cap)
        if p + c > context:
            raise UserError(f"distribution {distribution.name!r}: a sequence of {p + c} tokens is longer "
                            f"than --context {context} (raise --context; sequences are never cut)")
        if used + p + c <= token_budget and p + c > 0:
            prefix.append(p)
            causal.append(c)
            used += p + c
            misses = 0
        else:
            misses += 1
            unplaced += p + c > token_budget
    if not prefix:
        raise UserError(f"distribution {distribution.name!r} drew no sequence that fits {token_budget} tokens")
    return PackedBatch(tuple(prefix), tuple(causal), token_budget, unplaced)


def budget_notice(spec: str, token_budget: int) -> str | None:
    """One line when a user file holds rows longer than the budget (they can never be drawn into a
    batch, so the sample is biased toward short rows); None otherwise."""
    rows = get_distribution(spec).rows
    if rows is None:
        return None
    over = sum(1 for r in rows if r > token_budget)
    if not over:
        return None
    return (f"{spec}: {over:,} of {len(rows):,} rows are longer than the {token_budget:,}-token budget: "
            "raise --tokens, or the sample is biased")


def packed(spec: str, tokens: int, seed: int, context: int) -> PackedBatch:
    """One configuration's batch (the distribution parsed once, from the per-process cache)."""
    return pack(get_distribution(spec), tokens, seed, context)


def batch_summary(batch: PackedBatch) -> dict[str, int]:
    """What a record says about the batch (attended pairs are the FLOP count's basis)."""
    out = {"num_seqs": len(batch.prefix_lens), "prefix_tokens": sum(batch.prefix_lens),
           "causal_tokens": sum(batch.causal_lens), "total_tokens": batch.total_tokens,
           "max_prefix": max(batch.prefix_lens), "max_causal": max(batch.causal_lens),
           "attended_pairs": attended_pairs(batch.prefix_lens, batch.causal_lens)}
    if batch.unplaced:
        out["unplaced_seqs"] = batch.unplaced
    return out
