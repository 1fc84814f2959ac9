"""Workloads: length distributions, how sequences are packed into batches, and one configuration's tensors.

A distribution draws one sequence's (prefix_len, causal_len) from a seeded `random.Random`.
Named ones model the workloads the review argued about; `frac:LO-HI` is parametric (prefix fraction
range); `file:PATH` samples a user's measured lengths (CSV or JSONL with prefix_len, causal_len).
`pack` fills a token budget the way a packing data loader does. A `Workload` is everything a measured
call needs (the packed batch, its metadata, random Q/K/V/dout on the device), built once per
configuration and shared by every implementation measured on it, so they see identical work.
"""
from __future__ import annotations

import csv
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch

from bench.errors import UserError
from prefixlm_attn.dense_reference import attended_pairs
from prefixlm_attn.metadata import BatchMetadata, build_batch_metadata

if TYPE_CHECKING:          # the grid imports this module (distributions); a Config is only passed in
    from bench.grid import Config

DEFAULT_CONTEXT = 8192   # longest sequence (prefix + causal) a distribution draws
MIN_SEQ = 16

Draw = Callable[[random.Random, int], tuple[int, int]]


def _lognormal_total(rng: random.Random, context: int, median: float, sigma: float = 0.7) -> int:
    return int(min(context, max(MIN_SEQ, round(rng.lognormvariate(math.log(median), sigma)))))


def _split(total: int, prefix_fraction: float, min_causal: int = 1) -> tuple[int, int]:
    prefix = min(total - min_causal, max(0, round(total * prefix_fraction)))
    return prefix, total - prefix


def _frac_draw(lo: float, hi: float, median_frac: float = 0.25) -> Draw:
    def draw(rng: random.Random, context: int) -> tuple[int, int]:
        return _split(_lognormal_total(rng, context, context * median_frac), rng.uniform(lo, hi))
    return draw


def _no_causal(rng: random.Random, context: int) -> tuple[int, int]:
    return _lognormal_total(rng, context, context * 0.25), 0


def _mixed_zero_causal(rng: random.Random, context: int) -> tuple[int, int]:
    total = _lognormal_total(rng, context, context * 0.25)
    if rng.random() < 0.5:
        return total, 0                       # a prompt-only sample (e.g. a packed pretraining doc)
    return _split(total, rng.uniform(0.3, 0.7))


def _prefix_fills_context(rng: random.Random, context: int) -> tuple[int, int]:
    return context - 1, 1


def _uniform(rng: random.Random, context: int) -> tuple[int, int]:
    total = rng.randint(MIN_SEQ, context)
    prefix = rng.randint(0, total)
    return prefix, total - prefix


@dataclass(frozen=True)
class Distribution:
    name: str
    description: str
    draw: Draw


NAMED: dict[str, Distribution] = {d.name: d for d in (
    Distribution("sft_long_prompt", "SFT: long prompts (75-95% prefix), short answers", _frac_draw(0.75, 0.95)),
    Distribution("short_prefix_long_response", "short prompts (5-20% prefix), long responses",
                 _frac_draw(0.05, 0.20)),
    Distribution("no_causal", "no sequence has causal tokens (prefix only): the guard's branch", _no_causal),
    Distribution("mixed_zero_causal", "half the sequences prefix-only, half 30-70% prefix", _mixed_zero_causal),
    Distribution("prefix_fills_context", "prefix = context - 1, one response token", _prefix_fills_context),
    Distribution("uniform", "total uniform in [16, context], prefix uniform in [0, total]", _uniform),
)}


def _parse_frac(spec: str) -> Distribution:
    body = spec.removeprefix("frac:")
    try:
        lo_s, hi_s = body.split("-")
        lo, hi = float(lo_s), float(hi_s)
    except ValueError:
        raise UserError(f"distribution {spec!r}: expected frac:LO-HI with fractions, e.g. frac:0.2-0.5") from None
    if not 0.0 <= lo <= hi <= 1.0:
        raise UserError(f"distribution {spec!r}: need 0 <= LO <= HI <= 1")
    return Distribution(spec, f"prefix fraction uniform in [{lo}, {hi}]", _frac_draw(lo, hi))


def read_length_file(path: Path) -> list[tuple[int, int]]:
    """(prefix_len, causal_len) rows from a CSV with a header or a JSONL file."""
    if not path.is_file():
        raise UserError(f"length file {path} does not exist")
    rows: list[tuple[int, int]] = []
    try:
        if path.suffix == ".jsonl":
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if line.strip():
                    obj = json.loads(line)
                    rows.append(_length_row(obj, f"{path}:{n}"))
        else:
            with path.open(newline="") as fh:
                for n, obj in enumerate(csv.DictReader(fh), 2):
                    rows.append(_length_row(obj, f"{path}:{n}"))
    except (json.JSONDecodeError, csv.Error, UnicodeDecodeError) as exc:
        raise UserError(f"length file {path}: cannot parse ({exc})") from None
    if not rows:
        raise UserError(f"length file {path} holds no rows")
    return rows


def _length_row(obj: dict, where: str) -> tuple[int, int]:
    try:
        prefix, causal = int(obj["prefix_len"]), int(obj["causal_len"])
    except KeyError as exc:
        raise UserError(f"{where}: missing column {exc.args[0]!r} (need prefix_len, causal_len)") from None
    except (TypeError, ValueError):
        raise UserError(f"{where}: prefix_len and causal_len must be integers") from None
    if prefix < 0 or causal < 0 or prefix + causal == 0:
        raise UserError(f"{where}: lengths ({prefix}, {causal}) must be >= 0 and not both 0")
    return prefix, causal


def _file_distribution(spec: str) -> Distribution:
    path = Path(spec.removeprefix("file:"))
    rows = read_length_file(path)

    def draw(rng: random.Random, context: int) -> tuple[int, int]:
        return rng.choice(rows)
    return Distribution(spec, f"lengths sampled from {path.name} ({len(rows)} rows)", draw)


def get_distribution(spec: str) -> Distribution:
    if spec in NAMED:
        return NAMED[spec]
    if spec.startswith("frac:"):
        return _parse_frac(spec)
    if spec.startswith("file:"):
        return _file_distribution(spec)
    raise UserError(f"unknown distribution {spec!r}; choose from {', '.join(NAMED)}, frac:LO-HI, file:PATH")


@dataclass(frozen=True)
class PackedBatch:
    prefix_lens: tuple[int, ...]
    causal_lens: tuple[int, ...]
    token_budget: int

    @property
    def total_tokens(self) -> int:
        return sum(self.prefix_lens) + sum(self.causal_lens)


def pack(distribution: Distribution, token_budget: int, seed: int, context: int = DEFAULT_CONTEXT,
         max_misses: int = 16) -> PackedBatch:
    """Greedy first-fit over a seeded stream: take each sequence that fits the remaining budget;
    stop when the budget is full or `max_misses` sequences in a row did not fit (the rest is padding).
    Sequences longer than the budget are cut to it (prefix first), as a loader truncates them.
    """
    rng = random.Random(f"{distribution.name}/{token_budget}/{seed}")
    prefix: list[int] = []
    causal: list[int] = []
    used = misses = 0
    cap = min(context, token_budget)
    while used < token_budget and misses < max_misses:
        p, c = distribution.draw(rng, cap)
        if p + c > cap:                       # a file's sequence longer than the context: truncate
            p = min(p, cap)
            c = min(c, cap - p)
        if used + p + c <= token_budget and p + c > 0:
            prefix.append(p)
            causal.append(c)
            used += p + c
            misses = 0
        else:
            misses += 1
    if not prefix:
        raise UserError(f"distribution {distribution.name!r} drew no sequence that fits {token_budget} tokens")
    return PackedBatch(tuple(prefix), tuple(causal), token_budget)


@dataclass
class Workload:
    config: Config
    batch: PackedBatch
    meta: BatchMetadata
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    dout: torch.Tensor

    @property
    def device(self) -> torch.device:
        return self.q.device

    def leaves(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.q, self.k, self.v

    def clear_grads(self) -> None:
        for t in self.leaves():
            t.grad = None


def batch_summary(batch: PackedBatch) -> dict[str, int]:
    """What a record says about the batch (attended pairs are the FLOP count's basis)."""
    return {"num_seqs": len(batch.prefix_lens), "prefix_tokens": sum(batch.prefix_lens),
            "causal_tokens": sum(batch.causal_lens), "total_tokens": batch.total_tokens,
            "max_prefix": max(batch.prefix_lens), "max_causal": max(batch.causal_lens),
            "attended_pairs": attended_pairs(batch.prefix_lens, batch.causal_lens)}


def torch_dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r}")
    return dtype


def random_inputs(tokens: int, heads: int, head_dim: int, seed: int, device: str | torch.device,
                  dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v, dout drawn in float32 from one seeded CPU generator: the same numbers on every device."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return tuple(torch.randn((tokens, heads, head_dim), generator=gen, dtype=torch.float32).to(device=device, dtype=dtype)
                 for _ in range(4))


def packed_batch(config: Config) -> PackedBatch:
    return pack(get_distribution(config.distribution), config.tokens, config.seed, config.context)


def build_workload(config: Config, device: str, batch: PackedBatch | None = None) -> Workload:
    """The configuration's tensors on `device`; `batch` is the configuration's packed batch when the
    caller packed it already (the sweep packs once, in the parent)."""
    batch = packed_batch(config) if batch is None else batch
    meta = build_batch_metadata(batch.prefix_lens, batch.causal_lens, config.tokens, device)
    q, k, v, dout = random_inputs(config.tokens, config.heads, config.head_dim, config.seed, device,
                                  torch_dtype(config.dtype))
    return Workload(config, batch, meta, q.requires_grad_(True), k.requires_grad_(True), v.requires_grad_(True), dout)
