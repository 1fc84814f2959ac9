"""Every record field the verdict, tables and palette read, in one place.

Records are dicts today (docs/DESIGN.md, "Records"); when they become a typed dataclass only these
accessors change. Each returns None where the record has no such value instead of raising.
"""
from __future__ import annotations

from typing import Any, Optional

Record = Any          # a results.jsonl object (dict) today


def name(rec: Record) -> str:
    """The implementation: a variant of the op or a peer."""
    return rec["variant"]


def kind(rec: Record) -> str:
    return rec.get("kind") or "variant"


def config_id(rec: Record) -> str:
    return rec["config_id"]


def distribution(rec: Record) -> str:
    return rec["distribution"]


def tokens(rec: Record) -> int:
    return int(rec["tokens"])


def shape(rec: Record) -> tuple[Any, Any, Any]:
    """(heads, head_dim, dtype)."""
    return rec.get("heads"), rec.get("head_dim"), rec.get("dtype")


def status(rec: Record) -> str:
    return rec.get("status") or "unknown"


def is_ok(rec: Record) -> bool:
    return rec.get("status") == "ok" and isinstance(rec.get("timings_ms"), dict)


def error(rec: Record) -> Optional[str]:
    return rec.get("error")


def backend(rec: Record) -> Optional[str]:
    return rec.get("backend")


def device(rec: Record) -> Optional[str]:
    return rec.get("device")


def on_reference(rec: Record) -> bool:
    """Timed by the pure-PyTorch reference backend or on the CPU: not a GPU measurement."""
    return rec.get("backend") == "reference" or rec.get("device") == "cpu"


def stat(rec: Record, metric: str) -> Optional[dict]:
    """{median, lo, hi, n, rel_ci} of forward / backward / extra_vs_best, or of a phase `bwd.*`/`fwd.*`."""
    t = rec.get("timings_ms") or {}
    if "." in metric:
        return (t.get("phases") or {}).get(metric)
    s = t.get(metric)
    return s if isinstance(s, dict) and "median" in s else None


def median(rec: Record, metric: str) -> Optional[float]:
    s = stat(rec, metric)
    return None if s is None else s["median"]


def samples(rec: Record, metric: str) -> Optional[list[float]]:
    """Raw per-round samples (round-aligned across the implementations of one configuration)."""
    return (rec.get("samples_ms") or {}).get(metric) or None


def causal_tokens(rec: Record) -> Optional[int]:
    return (rec.get("batch") or {}).get("causal_tokens")


def has_byte_model(rec: Record) -> bool:
    """Byte counts and the same run's bandwidth probe: what the byte-model prediction needs."""
    b, bw = rec.get("bytes") or {}, rec.get("bandwidth") or {}
    return "zero_filled" in b and "added" in b and {"fill_ms", "add_ms", "kv_bytes"} <= set(bw)


def bandwidth(rec: Record) -> Optional[dict]:
    return rec.get("bandwidth")


def stop_reason(rec: Record) -> Optional[str]:
    return rec.get("stop_reason")


def tflops(rec: Record, direction: str) -> Optional[float]:
    return (rec.get("tflops") or {}).get(direction)
