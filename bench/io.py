"""Every file the suite reads or writes: JSONL record files, JSON side files, the schema version.

Records are appended and flushed one line at a time (a kill loses at most the line in flight), so
readers for --resume drop a cut line, while readers of files the suite did not just write (the
report, compare) are strict and name the bad path:line.
"""
from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any, Iterable

from bench.errors import UserError

SCHEMA = 1          # the version of every record and summary the suite writes (docs/records.md)


def read_jsonl(path: Path, strict: bool = False) -> list[dict]:
    """Records of a JSONL file; missing file -> [].

    Not strict (resume, merge): a line cut short by a kill is dropped. Strict (the report reads files
    it did not write): a bad line or a non-object is a UserError naming path:line.
    """
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if strict:
                raise UserError(f"{path}:{lineno}: not JSON ({exc.msg})") from None
            continue  # a line cut short by a killed rank: the configuration will rerun on --resume
        if strict and not isinstance(obj, dict):
            raise UserError(f"{path}:{lineno}: expected a JSON object")
        records.append(obj)
    return records


def read_records(paths: Iterable[Path]) -> list[dict]:
    """Records of several files; a line cut by a kill is dropped, so that configuration reruns."""
    return [record for path in paths for record in read_jsonl(Path(path))]


def write_jsonl(path: Path, records: Iterable[dict]) -> Path:
    """Replace `path` with `records`, one a line, through a temporary file (never half written)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")
    tmp.replace(path)
    return path


def write_json(path: Path, obj: Any, indent: int = 2, newline: bool = False) -> Path:
    """One JSON document (env.json, summaries, probes); `newline` ends the file with one."""
    path = Path(path)
    path.write_text(json.dumps(obj, indent=indent) + ("\n" if newline else ""))
    return path


def open_results(out_dir: str | Path, filename: str, resume: bool) -> Path:
    """`out_dir/filename`, its directory created; a non-empty file is continued only with --resume."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"--out {out_dir}: not a directory (a file of that name is in the way)") from None
    path = out_dir / filename
    if not resume and path.exists() and path.stat().st_size:
        raise UserError(f"{path} already holds records: pass --resume to continue it, or another --out")
    return path


class RecordFile:
    """`results.jsonl` (or a rank's file, or validation.jsonl): appended and flushed per record."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, record: dict) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()


def results_path(path: str | Path) -> Path:
    """Accept a directory or a results.jsonl path; raise UserError when there is nothing to read."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.jsonl"
    if not p.is_file():
        raise UserError(f"no results file: {p} (expected a directory holding results.jsonl, or its path)")
    return p


def read_json_object(path: Path) -> dict[str, Any] | None:
    """env.json / breakdown.json if present; anything but a JSON object is a UserError, not a crash later."""
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def read_checked_jsonl(path: Path, required: Iterable[str], what: str = "row") -> list[dict]:
    """Rows of a JSONL file the suite did not just write (strict), each holding the `required` keys."""
    rows = read_jsonl(path, strict=True)
    for i, row in enumerate(rows, start=1):
        missing = [k for k in required if k not in row]
        if missing:
            raise UserError(f"{path}: {what} {i} lacks {', '.join(missing)}")
    return rows


# ---- results.csv: one flat row per record, for spreadsheets ---------------------------------------

SKIPPED_CSV_KEYS = ("samples_ms",)     # raw per-round samples: hundreds of values, kept in results.jsonl only


def flatten_record(record: Any) -> dict[str, Any]:
    """One flat row: nested objects become dotted keys, short lists index keys (`.0`, `.1`), None stays None."""
    if hasattr(record, "to_json"):          # a typed Record: its on-disk form
        record = record.to_json()
    elif dataclasses.is_dataclass(record) and not isinstance(record, type):
        record = dataclasses.asdict(record)
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{prefix}.{i}", v)
        else:
            out[prefix] = value

    for key, value in record.items():
        if key not in SKIPPED_CSV_KEYS:
            walk(key, value)
    return out


def write_results_csv(records: Iterable[Any], path: str | Path) -> Path:
    """results.csv: the union of every record's flat keys as columns (first-seen order), blank where absent."""
    rows = [flatten_record(r) for r in records]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path
