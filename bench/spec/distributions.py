"""Length distributions, parsed once per process into a value that carries its content key.

A distribution draws one sequence's (prefix_len, causal_len) from a seeded `random.Random`.
Named ones model the workloads the review argued about; `frac:LO-HI` is parametric (prefix fraction
range); `file:PATH` samples a user's measured lengths (CSV or JSONL, docs/records.md lists the
accepted column names); `batches:PATH#N` is line N of a JSONL of packed batches, replayed exactly.
A user file's distribution is keyed by a hash of its contents (`Distribution.key`): the
configuration id and the random draws follow the data, not how the path is spelled.
A user file is read and hashed once per process (and again only when its size or modification time
changes), so a `batches:` file of 100,000 lines costs one read, not one per configuration, and a
configuration id never reads a file. Torch-free: the grid, the CLI's --help and the report import it.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench.spec.errors import UserError

DEFAULT_CONTEXT = 8192   # longest sequence (prefix + causal) a distribution draws
MIN_SEQ = 16
MAX_TOKENS = 2 ** 27     # token budget cap: 128M rows is past any GPU's memory at any head count
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
class InputFile:
    """A user file a distribution reads: where it is and what it held when it was read."""
    path: str                        # absolute
    sha256: str                      # of the bytes read (full hex digest)

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "sha256": self.sha256}


@dataclass(frozen=True)
class Distribution:
    name: str
    description: str
    draw: Draw
    key: str = ""                    # what ids and seeds use: the name, or a user file's content hash
    batch: tuple[tuple[int, ...], tuple[int, ...]] | None = field(default=None, compare=False)  # batches:
    rows: tuple[int, ...] | None = field(default=None, compare=False, repr=False)   # file: each row's total
    source: InputFile | None = field(default=None, compare=False)                   # file: / batches:

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


def file_sha256(path: str | Path) -> str | None:
    """The full SHA-256 of a file now (None when it cannot be read): what a resume compares."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


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
        digits = text[1:] if text.startswith("-") else text
        if not (digits.isascii() and digits.isdigit()):       # "²" and "١٢" are digits to str, not to int
            raise UserError(f"{where}: {name} = {value[:40]!r} is not an integer length")
        if len(digits) > 30:                                    # int() refuses past 4300 digits, with a traceback
            raise UserError(f"{where}: {name} = {text[:12]}... ({len(digits)} digits) is not a length")
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
    rows, data = _parse_lengths(path, columns, _file_bytes(path, "length file"))
    return rows, content_hash(data)


def _parse_lengths(path: Path, columns: tuple[str, str] | None, data: bytes) -> tuple[list[tuple[int, int]], bytes]:
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
    except RecursionError:
        raise UserError(f"length file {path}: cannot parse (JSON nested too deeply)") from None
    if not rows:
        raise UserError(f"length file {path} holds no rows")
    return rows, data


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


# (kind, absolute path, columns) -> (the file's stat stamp, what it parsed to): one read per file and edit
_PARSED: dict[tuple, tuple[tuple, object]] = {}


def _stamp(path: str | Path, what: str) -> tuple:
    try:
        st = os.stat(path)
    except OSError:
        _file_bytes(Path(path), what)                  # raises the one-line error
        raise
    return st.st_mtime_ns, st.st_size, st.st_ino


def _parsed(kind: str, path: str | Path, columns: tuple[str, str] | None, parse: Callable[[bytes], object],
            what: str) -> tuple[object, InputFile]:
    """`parse(bytes)` of a user file, cached until the file's size or modification time changes."""
    key = _cache_key(kind, path, columns)
    stamp = _stamp(path, what)
    hit = _PARSED.get(key)
    if hit is None or hit[0] != stamp:
        data = _file_bytes(Path(path), what)
        hit = (stamp, (parse(data), InputFile(str(Path(path).resolve()), hashlib.sha256(data).hexdigest())))
        _PARSED[key] = hit
    return hit[1]


def _file_distribution(spec: str) -> Distribution:
    path, cols = _split_spec(spec, "file:")
    columns = parse_columns(cols)
    rows, source = _parsed("file", path, columns, lambda data: _parse_lengths(path, columns, data)[0], "length file")

    def draw(rng: random.Random, context: int) -> tuple[int, int]:
        return rng.choice(rows)
    key = f"file@{source.sha256[:12]}" + (f"[{','.join(columns)}]" if columns else "")
    return Distribution(spec, f"lengths sampled from {path.name} ({len(rows)} rows)", draw, key,
                        rows=tuple(p + c for p, c in rows), source=source)


def read_batches_file(path: Path) -> tuple[list[tuple[tuple[int, ...], tuple[int, ...]]], str]:
    """Packed batches, one JSON object a line: {"prefix_lens": [...], "causal_lens": [...]} (read once)."""
    batches, source = _parsed("batches", path, None, lambda data: _parse_batches(path, data), "batches file")
    return batches, source.sha256[:12]


def _parse_batches(path: Path, data: bytes) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    batches = []
    for n, line in enumerate(_text(data, path).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where}: not JSON ({exc.msg})") from None
        except RecursionError:
            raise UserError(f"{where}: not JSON (nested too deeply)") from None
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
    return batches


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
    batches, source = _parsed("batches", path_s, None, lambda data: _parse_batches(Path(path_s), data),
                              "batches file")
    index = int(index_s)
    if not 1 <= index <= len(batches):
        raise UserError(f"distribution {spec!r}: {path_s} holds {len(batches)} batches")
    batch = batches[index - 1]

    def draw(rng: random.Random, context: int) -> tuple[int, int]:
        raise UserError(f"distribution {spec!r} replays a fixed batch; it draws no sequences")
    return Distribution(spec, f"batch {index} of {os.path.basename(path_s)}, replayed exactly", draw,
                        f"batches@{source.sha256[:12]}#{index}", batch, source=source)


def longest_sequence(spec: str) -> int | None:
    """The longest sequence a user file holds (None for parametric distributions, which fit any context)."""
    d = get_distribution(spec)
    if d.batch is not None:
        return max(p + c for p, c in zip(*d.batch))
    if d.rows is not None:
        return max(d.rows)
    return None


def input_file(spec: str) -> InputFile | None:
    """The user file behind a `file:` or `batches:` axis value (None for the others)."""
    if spec.startswith("batches:") and "#" not in spec.removeprefix("batches:"):
        path = Path(spec.removeprefix("batches:"))
        return _parsed("batches", path, None, lambda data: _parse_batches(path, data), "batches file")[1]
    return get_distribution(spec).source if spec.startswith(("file:", "batches:")) else None


def absolute_spec(spec: str) -> str:
    """`file:rel/lens.csv` -> `file:/abs/rel/lens.csv` (a run directory remembers where its inputs are,
    whatever directory a resume runs from); other values unchanged."""
    for prefix in ("file:", "batches:"):
        if spec.startswith(prefix):
            body = spec.removeprefix(prefix)
            path, sep, tail = (body.partition("?columns=") if prefix == "file:" else (body, "", ""))
            if prefix == "batches:" and "#" in body:
                path, sep, tail = body.rpartition("#")[0], "#", body.rpartition("#")[2]
            if not path or Path(path).is_absolute():
                return spec
            return prefix + os.path.abspath(path) + sep + tail
    return spec


def distribution_key(spec: str) -> str:
    """The spec as configuration ids spell it: user files by content hash (a parse cached per file
    and edit: no file is read again for an id)."""
    if not spec.startswith(("file:", "batches:")):
        return spec
    return get_distribution(spec).id_key


_BUILT: dict[str, tuple[object, Distribution]] = {}     # user-file spec -> (its file's parse, the value)
_WHAT = {"file": "length file", "batches": "batches file"}


def _cache_key(kind: str, path: str | Path, columns: tuple[str, str] | None) -> tuple:
    path = str(path)
    return kind, path, columns, "" if os.path.isabs(path) else os.getcwd()


def _source_of(spec: str) -> tuple[str, str, tuple[str, str] | None]:
    """(kind, path, columns) of a user-file spec, as plain strings: this runs once per configuration id."""
    if spec.startswith("file:"):
        body = spec.removeprefix("file:")
        path, sep, cols = body.rpartition("?columns=")
        return ("file", path, parse_columns(cols)) if sep else ("file", body, None)
    body = spec.removeprefix("batches:")
    return "batches", body.rpartition("#")[0] or body, None


def _user_distribution(spec: str, build: Callable[[str], Distribution]) -> Distribution:
    """The value of a `file:`/`batches:` spec, built again only when its file's parse changed."""
    kind, path, columns = _source_of(spec)
    key = _cache_key(kind, path, columns)
    built = _BUILT.get(spec)
    if built is not None:
        hit = _PARSED.get(key)
        if hit is built[0] and hit is not None and hit[0] == _stamp(path, _WHAT[kind]):
            return built[1]
    d = build(spec)
    _BUILT[spec] = (_PARSED.get(key), d)
    return d


def get_distribution(spec: str) -> Distribution:
    if spec in NAMED:
        return NAMED[spec]
    if spec.startswith("frac:"):
        return _parse_frac(spec)
    if spec.startswith("file:"):
        return _user_distribution(spec, _file_distribution)
    if spec.startswith("batches:"):
        return _user_distribution(spec, _batches_distribution)
    raise UserError(f"unknown distribution {spec!r}; choose from {', '.join(NAMED)}, frac:LO-HI, file:PATH, "
                    "batches:PATH")
