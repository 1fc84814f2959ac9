"""Named length patterns for validation: every degenerate batch shape the op must survive.

Each pattern is one packed batch (per-sequence prefix and response lengths plus the token budget
it is padded to). Budgets stay small (<= 256 rows) so a CPU run of the whole catalogue is quick.
"""
from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from bench.spec.errors import UserError
from bench.spec.packing import PackedBatch
from prefixlm_attn.metadata import InvalidLengths, validate_lengths

MAX_TOKEN_BUDGET = 256


@dataclass(frozen=True)
class Pattern(PackedBatch):
    """A named batch of lengths to check (the sweep's PackedBatch plus a name)."""
    name: str = "pattern"



def make_pattern(name: str, prefix: list[int], causal: list[int], token_budget: Optional[int] = None,
                 padding: int = 3) -> Pattern:
    """A checked pattern; the budget defaults to the total plus `padding` rows."""
    p, c = validate_lengths(prefix, causal)
    budget = sum(p) + sum(c) + padding if token_budget is None else int(token_budget)
    validate_lengths(p, c, budget)
    return Pattern(tuple(p), tuple(c), budget, name=name)


def catalogue() -> list[Pattern]:
    """The hand-picked boundary cases, one per degenerate combination."""
    m = make_pattern
    return [
        m("single_prefix_only", [9], [0]),
        m("single_causal_only", [0], [9]),
        m("single_both", [7], [5]),
        m("all_zero_causal", [9, 4, 6], [0, 0, 0]),
        m("all_zero_prefix", [0, 0, 0], [5, 3, 7]),
        m("mixed_zero_causal", [16, 16, 13, 10], [0, 0, 3, 6]),
        m("mixed_zero_prefix", [0, 4, 0], [5, 3, 2]),
        m("one_token_response", [6, 3, 5], [1, 1, 1]),
        m("one_token_prefix", [1, 1], [6, 4]),
        m("prefix_fills_context", [63], [1], token_budget=64),
        m("empty_sequence_middle", [3, 0, 4], [2, 0, 1]),
        m("empty_sequence_end", [3, 4, 0], [2, 1, 0]),
        m("exact_budget", [15, 8], [1, 8], token_budget=32),
        m("heavy_padding", [3, 2], [2, 1], token_budget=200),
        m("many_tiny_prefix_only", [1] * 24, [0] * 24),
        m("many_tiny_causal_only", [0] * 24, [1] * 24),
        m("many_tiny_alternating", [1, 0] * 12, [0, 1] * 12),
        m("one_token_total", [1], [0]),
        m("long_short_mix", [120, 1, 0, 40, 2], [30, 0, 1, 9, 3], token_budget=256),
    ]


def random_patterns(seed: int, n: int, max_seqs: int = 6, max_len: int = 20) -> list[Pattern]:
    """`n` random batches; lengths are 0 a quarter of the time so zeros appear in every mix."""
    rng = random.Random(seed)

    def length() -> int:
        return 0 if rng.random() < 0.25 else rng.randint(1, max_len)

    out: list[Pattern] = []
    while len(out) < n:
        seqs = rng.randint(1, max_seqs)
        prefix, causal = [length() for _ in range(seqs)], [length() for _ in range(seqs)]
        if rng.random() < 0.15:       # whole-batch zero columns
            (prefix if rng.random() < 0.5 else causal)[:] = [0] * seqs
        total = sum(prefix) + sum(causal)
        if total == 0:
            continue
        padding = 0 if rng.random() < 0.2 else rng.randint(1, 16)
        out.append(Pattern(tuple(prefix), tuple(causal), min(total + padding, max(total, MAX_TOKEN_BUDGET)),
                           name=f"random_{seed}_{len(out)}"))
    return out


def _parse_list(value: Any, field: str, where: str) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = json.loads(text) if text.startswith("[") else [int(x) for x in text.replace(";", " ").split()]
        except (ValueError, RecursionError):
            raise UserError(f"{where}: {field} {value!r} is not a list of integers") from None
        if isinstance(parsed, list):
            return parsed
    raise UserError(f"{where}: {field} must be a list of integers, got {value!r}")


def _pattern_from_row(row: Any, where: str) -> Pattern:
    if not isinstance(row, dict):
        raise UserError(f"{where}: expected an object with name, prefix_lens, causal_lens")
    missing = [f for f in ("name", "prefix_lens", "causal_lens") if row.get(f) in (None, "")]
    if missing:
        raise UserError(f"{where}: missing field(s) {', '.join(missing)}")
    budget = row.get("token_budget")
    try:
        budget = None if budget in (None, "") else int(budget)
        return make_pattern(str(row["name"]), _parse_list(row["prefix_lens"], "prefix_lens", where),
                            _parse_list(row["causal_lens"], "causal_lens", where), budget)
    except (InvalidLengths, ValueError, TypeError) as exc:
        raise UserError(f"{where}: {exc}") from None


def load_patterns(path: str | Path) -> list[Pattern]:
    """User patterns from .json (a list), .jsonl (one object a line) or .csv (lists as '[1,2]' or '1 2')."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"patterns file {path} does not exist")
    text = path.read_text(errors="replace")
    suffix = path.suffix.lower()
    rows: list[tuple[str, Any]] = []
    try:
        if suffix == ".json":
            data = json.loads(text)
            if isinstance(data, dict):
                data = data.get("patterns", [data])
            if not isinstance(data, list):
                raise UserError(f"{path}: expected a JSON list of patterns")
            rows = [(f"{path} item {i}", r) for i, r in enumerate(data)]
        elif suffix == ".jsonl":
            rows = [(f"{path} line {i}", json.loads(line)) for i, line in enumerate(text.splitlines(), 1)
                    if line.strip()]
        elif suffix == ".csv":
            rows = [(f"{path} row {i}", r) for i, r in enumerate(csv.DictReader(text.splitlines()), 2)]
        else:
            raise UserError(f"{path}: unknown patterns format {suffix!r}; use .json, .jsonl or .csv")
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise UserError(f"{path}: invalid JSON (nested too deeply)") from None
    if not rows:
        raise UserError(f"{path}: no patterns found")
    patterns = [_pattern_from_row(r, where) for where, r in rows]
    check_unique_names(patterns, f"{path}: duplicate pattern name(s)")
    return patterns


def check_unique_names(patterns: Sequence[Pattern], message: str) -> None:
    """Records are keyed by pattern name (and --resume skips by it): two patterns may not share one."""
    names = [p.name for p in patterns]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UserError(f"{message} {', '.join(dup)}")
