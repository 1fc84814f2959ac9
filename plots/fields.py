"""Every record field the verdict and tables read, in one place, through the typed `Record`.

Accessors take a `bench.results.records.Record` (a raw results.jsonl dict is converted once by `as_record`)
and return None where the record has no such value instead of raising.
"""
from __future__ import annotations

from typing import Any, Optional, Union

from bench.results.records import Record

RecordLike = Union[Record, dict]


def as_record(rec: RecordLike) -> Record:
    return rec if isinstance(rec, Record) else Record.from_json(rec)


def name(rec: RecordLike) -> str:
    """The implementation: a variant of the op or a peer."""
    return as_record(rec).variant


def kind(rec: RecordLike) -> str:
    return as_record(rec).kind or "variant"


def config_id(rec: RecordLike) -> str:
    return as_record(rec).config_id


def distribution(rec: RecordLike) -> str:
    return as_record(rec).distribution


def tokens(rec: RecordLike) -> int:
    return int(as_record(rec).tokens)


def shape(rec: RecordLike) -> tuple[Any, Any, Any]:
    """(heads, head_dim, dtype)."""
    r = as_record(rec)
    return r.heads, r.head_dim, r.dtype


def status(rec: RecordLike) -> str:
    return as_record(rec).status or "unknown"


def is_ok(rec: RecordLike) -> bool:
    return as_record(rec).ok


def error(rec: RecordLike) -> Optional[str]:
    return as_record(rec).error


def backend(rec: RecordLike) -> Optional[str]:
    return as_record(rec).backend


def device(rec: RecordLike) -> Optional[str]:
    return as_record(rec).device


def on_reference(rec: RecordLike) -> bool:
    """Timed by the pure-PyTorch reference backend or on the CPU: not a GPU measurement."""
    r = as_record(rec)
    return str(r.backend or "").startswith("reference") or r.device == "cpu"


def stat(rec: RecordLike, metric: str) -> Optional[dict]:
    """{median, lo, hi, n, rel_ci} of forward / backward / extra_vs_best, or of a phase `bwd.*`/`fwd.*`."""
    s = as_record(rec).stat(metric)
    return None if s is None else s.as_dict()


def median(rec: RecordLike, metric: str) -> Optional[float]:
    s = stat(rec, metric)
    return None if s is None else s["median"]


def samples(rec: RecordLike, metric: str) -> Optional[list[float]]:
    """Raw per-round samples (round-aligned across the implementations of one configuration)."""
    return (as_record(rec).samples_ms or {}).get(metric) or None


def causal_tokens(rec: RecordLike) -> Optional[int]:
    return (as_record(rec).batch or {}).get("causal_tokens")


def has_byte_model(rec: RecordLike) -> bool:
    """Byte counts and the same run's bandwidth probe: what the byte-model prediction needs."""
    r = as_record(rec)
    b, bw = r.bytes or {}, r.bandwidth or {}
    return ("zero_filled" in b and "added" in b and {"fill_ms", "add_ms", "kv_bytes"} <= set(bw)
            and all(isinstance(bw[k], dict) for k in ("fill_ms", "add_ms")))   # older runs: plain floats


def bandwidth(rec: RecordLike) -> Optional[dict]:
    return as_record(rec).bandwidth


def stop_reason(rec: RecordLike) -> Optional[str]:
    return as_record(rec).stop_reason


def tflops(rec: RecordLike, direction: str) -> Optional[float]:
    return (as_record(rec).tflops or {}).get(direction)
