"""Workloads: length distributions, how sequences are packed into batches, and one configuration's tensors.

A distribution draws one sequence's (prefix_len, causal_len) from a seeded `random.Random`.
Named ones model the workloads the review argued about; `frac:LO-HI` is parametric (prefix fraction
range); `file:PATH` samples a user's measured lengths (CSV or JSONL, docs/records.md lists the
accepted column names); `batches:PATH#N` is line N of a JSONL of packed batches, replayed exactly.
A user file's distribution is keyed by a hash of its contents (`Distribution.key`): the
configuration id and the random draws follow the data, not how the path is spelled.
`pack` fills a token budget the way a packing data loader does. A `Workload` is everything a measured
call needs (the packed batch, its metadata, random Q/K/V/dout on the device), built once per
configuration and shared by every implementation measured on it, so they see identical work.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch

from bench.spec.errors import UserError
from prefixlm_attn.dense_reference import attended_pairs
from prefixlm_attn.metadata import BatchMetadata, build_batch_metadata

if TYPE_CHECKING:          # the grid imports this module (distributions); a Config is only passed in
    from bench.spec.grid import Config

DEFAULT_CONTEXT = 8192   # longest sequence (prefix + causal) a distribution draws
MIN_SEQ = 16
MAX_TOKENS = 2 ** 27     # token budget cap: 128M rows is past any GPU's memory at any head count
# K/V-sized buffers one configuration holds at its peak: q, k, v, out, dout, dq, dk, dv, the two
# passes' partial outputs and dK/dV pairs, a float32 staging copy (2x for 16-bit dtypes) and slack.
BUFFER_FACTOR = 16
COLUMN_ALIASES = (("prefix_len", "causal_len"), ("prefix", "causal"), ("prompt_len", "response_len"))

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
    key: str = ""                    # what ids and seeds use: the name, or a user file's content hash
    batch: tuple[tuple[int, ...], tuple[int, ...]] | None = field(default=None, compare=False)  # batches:

    @property
    def id_key(self) -> str:
        return self.key or self.name


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


def _file_bytes(path: Path, what: str) -> bytes:
    if path.is_dir():
        raise UserError(f"{what} {path} is a directory (expected a file)")
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"{what} {path}: cannot read ({exc.strerror or exc})") from None


def content_hash(data: bytes) -> str:
    """12 hex digits of the file's SHA-256: its identity in configuration ids and seeds."""
    return hashlib.sha256(data).hexdigest()[:12]


def _text(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8-sig")           # a UTF-8 byte-order mark (spreadsheet exports) is dropped
    except UnicodeDecodeError as exc:
        raise UserError(f"length file {path}: not UTF-8 text ({exc.reason})") from None


def parse_columns(spec: str | None) -> tuple[str, str] | None:
    """`--columns A,B`: the prefix and causal column names."""
    if spec is None:
        return None
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != 2 or not all(parts):
        raise UserError(f"--columns {spec!r}: expected two column names, PREFIX,CAUSAL")
    return parts[0], parts[1]


def length_int(value: object, where: str, name: str) -> int:
    """A length: an int, or a string of digits (CSV); floats, booleans and non-finite values are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UserError(f"{where}: {name} = {value!r} is not an integer length")
    if isinstance(value, str):
        text = value.strip()
        if not text.lstrip("-").isdigit() or text.count("-") > 1:
            raise UserError(f"{where}: {name} = {value!r} is not an integer length")
        value = int(text)
    if value < 0:
        raise UserError(f"{where}: {name} = {value} must be >= 0")
    return value


def _pick_columns(keys: list[str], columns: tuple[str, str] | None, where: str) -> tuple[str, str]:
    if columns is not None:
        missing = [c for c in columns if c not in keys]
        if missing:
            raise UserError(f"{where}: missing column {missing[0]!r} (--columns {','.join(columns)})")
        return columns
    for pair in COLUMN_ALIASES:
        if all(c in keys for c in pair):
            return pair
    accepted = "; ".join(",".join(p) for p in COLUMN_ALIASES)
    raise UserError(f"{where}: no length columns among {', '.join(keys) or 'none'} "
                    f"(accepted: {accepted}; or --columns PREFIX,CAUSAL)")


def read_length_file(path: Path, columns: tuple[str, str] | None = None) -> list[tuple[int, int]]:
    """(prefix, causal) rows from a CSV with a header or a JSONL file."""
    return read_lengths(path, columns)[0]


def read_lengths(path: Path, columns: tuple[str, str] | None = None) -> tuple[list[tuple[int, int]], str]:
    """(prefix, causal) rows from a CSV with a header or a JSONL file, and the file's content hash."""
    data = _file_bytes(path, "length file")
    text = _text(data, path)
    rows: list[tuple[int, int]] = []
    try:
        if path.suffix == ".jsonl":
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    obj = json.loads(line)
                    if not isinstance(obj, dict):
                        raise UserError(f"{path}:{n}: expected a JSON object")
                    rows.append(_length_row(obj, _pick_columns(list(obj), columns, f"{path}:{n}"), f"{path}:{n}"))
        else:
            reader = csv.DictReader(io.StringIO(text, newline=""))
            names = _pick_columns([k.strip() for k in reader.fieldnames or []], columns, str(path))
            for n, obj in enumerate(reader, 2):
                rows.append(_length_row({(k or "").strip(): v for k, v in obj.items()}, names, f"{path}:{n}"))
    except (json.JSONDecodeError, csv.Error) as exc:
        raise UserError(f"length file {path}: cannot parse ({exc})") from None
    if not rows:
        raise UserError(f"length file {path} holds no rows")
    return rows, content_hash(data)


def _length_row(obj: dict, names: tuple[str, str], where: str) -> tuple[int, int]:
    prefix, causal = (length_int(obj.get(n), where, n) for n in names)
    if prefix < 0 or causal < 0 or prefix + causal == 0:
        raise UserError(f"{where}: lengths ({prefix}, {causal}) must be >= 0 and not both 0")
    return prefix, causal


def _split_spec(spec: str, prefix: str) -> tuple[Path, str | None]:
    """`file:PATH` or `file:PATH?columns=A,B` -> (PATH, "A,B")."""
    body = spec.removeprefix(prefix)
    if "?columns=" in body:
        body, cols = body.rsplit("?columns=", 1)
        return Path(body), cols
    return Path(body), None


def _file_distribution(spec: str) -> Distribution:
    path, cols = _split_spec(spec, "file:")
    columns = parse_columns(cols)
    rows, digest = read_lengths(path, columns)

    def draw(rng: random.Random, context: int) -> tuple[int, int]:
        return rng.choice(rows)
    key = f"file@{digest}" + (f"[{','.join(columns)}]" if columns else "")
    return Distribution(spec, f"lengths sampled from {path.name} ({len(rows)} rows)", draw, key)


def read_batches_file(path: Path) -> tuple[list[tuple[tuple[int, ...], tuple[int, ...]]], str]:
    """Packed batches, one JSON object a line: {"prefix_lens": [...], "causal_lens": [...]}."""
    data = _file_bytes(path, "batches file")
    batches = []
    for n, line in enumerate(_text(data, path).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict) or not all(isinstance(obj.get(k), list) for k in ("prefix_lens", "causal_lens")):
            raise UserError(f"{where}: expected {{\"prefix_lens\": [...], \"causal_lens\": [...]}}")
        prefix = tuple(length_int(v, where, "prefix_lens") for v in obj["prefix_lens"])
        causal = tuple(length_int(v, where, "causal_lens") for v in obj["causal_lens"])
        if len(prefix) != len(causal) or not prefix:
            raise UserError(f"{where}: prefix_lens and causal_lens need the same, non-zero, number of entries")
        if any(p + c == 0 for p, c in zip(prefix, causal)):
            raise UserError(f"{where}: a sequence with no tokens")
        batches.append((prefix, causal))
    if not batches:
        raise UserError(f"batches file {path} holds no batches")
    return batches, content_hash(data)


def expand_distribution(spec: str) -> list[tuple[str, int | None]]:
    """A grid axis value -> (distribution spec, its own token total or None): `batches:PATH` gives
    one `batches:PATH#N` per line (N from 1), everything else itself."""
    if spec.startswith("batches:") and "#" not in spec.removeprefix("batches:"):
        batches, _ = read_batches_file(Path(spec.removeprefix("batches:")))
        return [(f"{spec}#{i}", sum(p) + sum(c)) for i, (p, c) in enumerate(batches, 1)]
    return [(spec, None)]


def _batches_distribution(spec: str) -> Distribution:
    body = spec.removeprefix("batches:")
    path_s, _, index_s = body.rpartition("#")
    if not path_s or not index_s.isdigit():
        raise UserError(f"distribution {spec!r}: expected batches:PATH (or batches:PATH#N, N from 1)")
    batches, digest = read_batches_file(Path(path_s))
    index = int(index_s)
    if not 1 <= index <= len(batches):
        raise UserError(f"distribution {spec!r}: {path_s} holds {len(batches)} batches")
    batch = batches[index - 1]

    def draw(rng: random.Random, context: int) -> tuple[int, int]:
        raise UserError(f"distribution {spec!r} replays a fixed batch; it draws no sequences")
    return Distribution(spec, f"batch {index} of {Path(path_s).name}, replayed exactly", draw,
                        f"batches@{digest}#{index}", batch)


def longest_sequence(spec: str) -> int | None:
    """The longest sequence a user file holds (None for parametric distributions, which fit any context)."""
    d = get_distribution(spec)
    if d.batch is not None:
        return max(p + c for p, c in zip(*d.batch))
    if spec.startswith("file:"):
        path, cols = _split_spec(spec, "file:")
        rows = read_length_file(path, parse_columns(cols))
        return max(p + c for p, c in rows)
    return None


def batch_bytes(tokens: int, heads: int, head_dim: int, dtype_bytes: int) -> int:
    """Estimated peak bytes of one configuration: BUFFER_FACTOR K/V-sized buffers."""
    return BUFFER_FACTOR * tokens * heads * head_dim * dtype_bytes


_KEYS: dict[tuple[str, str], str] = {}


def distribution_key(spec: str) -> str:
    """The spec as configuration ids spell it: user files by content hash (the file is read each
    time, so an edit changes the id; parsing is cached per content)."""
    if not spec.startswith(("file:", "batches:")):
        return spec
    prefix = "batches:" if spec.startswith("batches:") else "file:"
    path = _split_spec(spec.rpartition("#")[0] if prefix == "batches:" and "#" in spec else spec, prefix)[0]
    try:
        stamp = (spec, content_hash(path.read_bytes()))
    except OSError:
        return get_distribution(spec).id_key          # raises the one-line error
    if stamp not in _KEYS:
        _KEYS[stamp] = get_distribution(spec).id_key
    return _KEYS[stamp]


def get_distribution(spec: str) -> Distribution:
    if spec in NAMED:
        return NAMED[spec]
    if spec.startswith("frac:"):
        return _parse_frac(spec)
    if spec.startswith("file:"):
        return _file_distribution(spec)
    if spec.startswith("batches:"):
        return _batches_distribution(spec)
    raise UserError(f"unknown distribution {spec!r}; choose from {', '.join(NAMED)}, frac:LO-HI, file:PATH, "
                    "batches:PATH")


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
    used = misses = 0
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
