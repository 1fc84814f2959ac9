"""Every file the suite reads or writes: JSONL record files, JSON side files, the schema version.

Records are written one whole line per write, flushed and fsynced, and a failed write (a full disk)
is cut back to the last whole line, so a file holds whole records and at most one line cut by a kill.
Every reader of a record file (sweep --resume, report, compare) goes through `read_record_file`:
a line that is not a JSON object is skipped with a warning on stderr. Readers never write into what
they read; only a writer resuming its own file (`repair=True`: sweep and validate --resume, the
rank merge) moves such a line to `<file>.corrupt`, and its configuration is measured again.
"""
from __future__ import annotations

import errno
import csv
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterable

from bench.spec.errors import UserError

SCHEMA = 1          # the version of every record and summary the suite writes (docs/records.md)
CORRUPT_SUFFIX = ".corrupt"


def _read_text(path: Path, what: str = "file") -> str:
    """A file's text; a directory, an unreadable file or bad bytes are one-line UserErrors."""
    if path.is_dir():
        raise UserError(f"{path} is a directory (expected a {what})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]                      # a UTF-8 byte-order mark (spreadsheet exports)
    return data.decode("utf-8", errors="replace")


def read_jsonl(path: Path, strict: bool = False) -> list[dict]:
    """Objects of a JSONL file the user gave (patterns, lengths, validation rows); missing file -> [].

    Strict: a bad line or a non-object is a UserError naming path:line. Not strict: such lines are
    skipped (record files go through `read_record_file`).
    """
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for lineno, line in enumerate(_read_text(path, "JSONL file").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            if strict:
                raise UserError(f"{path}:{lineno}: not JSON ({getattr(exc, 'msg', exc)})") from None
            continue
        if not isinstance(obj, dict):
            if strict:
                raise UserError(f"{path}:{lineno}: expected a JSON object")
            continue
        records.append(obj)
    return records


def read_record_file(path: Path, repair: bool = False, warn=None) -> list[dict]:
    """Records of a results file (results.jsonl, a rank file, validation.jsonl); missing file -> [].

    Every line that is not a JSON object (a line cut by a kill or a full disk, a garbled line) is
    skipped and named in one warning on stderr; the configuration it belonged to counts as not
    recorded. With `repair` (only the writer that resumes this file, holding its lock) such lines
    are also appended to `<path>.corrupt` and removed from `path` (rewritten through a temporary file).
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = _read_text(path, "results file").splitlines()
    records: list[dict] = []
    good: list[str] = []
    bad: list[tuple[int, str]] = []
    for lineno, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            obj = None
        if isinstance(obj, dict):
            records.append(obj)
            good.append(text)
        else:
            bad.append((lineno, line))
    if bad:
        where = ", ".join(str(n) for n, _ in bad[:5]) + (" ..." if len(bad) > 5 else "")
        corrupt = path.with_name(path.name + CORRUPT_SUFFIX)
        moved = False
        if repair:
            try:
                with corrupt.open("a") as fh:
                    for _, line in bad:
                        fh.write(line + "\n")
                _replace_lines(path, good)
                moved = True
            except OSError:
                moved = False
        note = f"moved to {corrupt}" if moved else "skipped"
        (warn or _warn)(f"prefixbench: warning: {path}: {len(bad)} unreadable line(s) ({where}) {note}; "
                        "their configurations count as not recorded (measured again with --resume)")
    return records


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def _replace_lines(path: Path, lines: Iterable[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as fh:
        for line in lines:
            fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def read_records(paths: Iterable[Path], repair: bool = False) -> list[dict]:
    """Records of several record files (`read_record_file` on each; duplicate paths read once)."""
    seen: list[Path] = []
    for path in paths:
        if Path(path) not in seen:
            seen.append(Path(path))
    return [record for path in seen for record in read_record_file(path, repair)]


def write_jsonl(path: Path, records: Iterable[dict]) -> Path:
    """Replace `path` with `records`, one a line, through a temporary file (never half written)."""
    path = Path(path)
    _replace_lines(path, (json.dumps(record) for record in records))
    return path


def write_json(path: Path, obj: Any, indent: int = 2, newline: bool = False) -> Path:
    """One JSON document (env.json, summaries, probes); `newline` ends the file with one."""
    path = Path(path)
    try:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(obj, indent=indent) + ("\n" if newline else ""))
        tmp.replace(path)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path


def open_results(out_dir: str | Path, filename: str, resume: bool) -> Path:
    """`out_dir/filename`, its directory created; a non-empty file is continued only with --resume."""
    out_dir = make_out_dir(out_dir)
    path = out_dir / filename
    if path.is_dir():
        raise UserError(f"{path} is a directory (expected the results file)")
    if not resume and path.exists() and path.stat().st_size:
        raise UserError(f"{path} already holds records: pass --resume to continue it, or another --out")
    return path


def make_out_dir(out_dir: str | Path, flag: str = "--out") -> Path:
    """Create an output directory and check it is writable: one line, not a traceback, when not."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"{flag} {out_dir}: not a directory (a file of that name is in the way)") from None
    except OSError as exc:
        raise UserError(f"{flag} {out_dir}: cannot create the directory ({exc.strerror or exc})") from None
    if not out_dir.is_dir():
        raise UserError(f"{flag} {out_dir}: not a directory (a file of that name is in the way)")
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {out_dir}: the directory is not writable")
    return out_dir


class RecordFile:
    """`results.jsonl` (or a rank's file, or validation.jsonl): one whole line per write, fsynced.

    A write that fails part way (a full disk) is cut back to the file's previous size, so the file
    never keeps a half line from this writer; the failure is a one-line UserError.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        make_out_dir(self.path.parent)

    def append(self, record: dict) -> None:
        data = (json.dumps(record) + "\n").encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(f"{self.path}: cannot open for writing ({exc.strerror or exc})") from None
        try:
            size = os.fstat(fd).st_size
            view = memoryview(data)
            try:
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            except OSError as exc:
                try:
                    os.ftruncate(fd, size)
                except OSError:
                    pass
                reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
                raise UserError(f"{self.path}: cannot write a record ({reason}); the file keeps its "
                                "whole records (continue with --resume)") from None
            except BaseException:            # an interrupt between two writes: no half line stays behind
                if view:                     # (a whole line stays: it is in the file, fsynced or not)
                    try:
                        os.ftruncate(fd, size)
                    except OSError:
                        pass
                raise
        finally:
            os.close(fd)


def results_path(path: str | Path) -> Path:
    """Accept a directory or a results.jsonl path; raise UserError when there is nothing to read."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.jsonl"
        if p.is_dir():
            raise UserError(f"{p} is a directory (expected the results file)")
    if not p.exists() and not p.parent.exists():
        raise UserError(f"no results file: {p.parent} does not exist")
    if not p.is_file():
        raise UserError(f"no results file: {p} (expected a directory holding results.jsonl, or its path)")
    return p


def read_json_object(path: Path) -> dict[str, Any] | None:
    """env.json / breakdown.json if present; anything but a JSON object is a UserError, not a crash later."""
    if not path.is_file():
        return None
    try:
        obj = json.loads(_read_text(path, "JSON file"))
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
    return write_rows_csv([flatten_record(r) for r in records], path)


def write_rows_csv(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Flat rows as CSV: the union of their keys as columns (first-seen order), blank where absent or None."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path
