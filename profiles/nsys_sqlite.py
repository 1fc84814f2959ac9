"""Read an `nsys export --type sqlite` file: GPU activities attributed to NVTX ranges.

The standard nsys join: each kernel/memset/memcpy row carries the correlationId of the CUDA runtime
call that launched it (CUPTI_ACTIVITY_KIND_RUNTIME); that call ran on a CPU thread at a time, and
the NVTX ranges open on that thread at that time enclose it. Column names differ between nsys
versions, so every column is looked up with PRAGMA table_info before use.
"""
from __future__ import annotations

import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Optional

from profiles.attribution import Activity, Span, global_spans, thread_stacks

KERNEL, MEMSET, MEMCPY = "CUPTI_ACTIVITY_KIND_KERNEL", "CUPTI_ACTIVITY_KIND_MEMSET", "CUPTI_ACTIVITY_KIND_MEMCPY"
RUNTIME, NVTX, STRINGS = "CUPTI_ACTIVITY_KIND_RUNTIME", "NVTX_EVENTS", "StringIds"
NVTX_PUSH_POP, NVTX_START_END, NVTX_DOMAIN_CREATE = 59, 60, 75
MEMCPY_KINDS = {1: "HtoD", 2: "DtoH", 3: "HtoA", 4: "AtoH", 5: "AtoA", 6: "AtoD", 7: "DtoA", 8: "DtoD",
                9: "HtoH", 10: "PtoP"}
TID_BITS = 24          # globalTid = pid << 24 | tid; globalPid has the tid bits zero


class NsysSchemaError(ValueError):
    """The file lacks a table or column the attribution needs."""


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def _pick(cols: set[str], *candidates: str) -> Optional[str]:
    return next((c for c in candidates if c in cols), None)


def _strings(conn: sqlite3.Connection, present: set[str]) -> dict[int, str]:
    if STRINGS not in present:
        return {}
    return dict(conn.execute(f"SELECT id, value FROM {STRINGS}"))


def _pid(global_id: Optional[int]) -> Optional[int]:
    return None if global_id is None else int(global_id) >> TID_BITS


def nvtx_domains(conn: sqlite3.Connection, strings: dict[int, str],
                 cols: Optional[set[str]] = None) -> dict[int, str]:
    """domainId -> name (0 is the default domain, named ""); `cols`: NVTX's columns, if already read."""
    cols = columns(conn, NVTX) if cols is None else cols
    text = "text" if "text" in cols else "NULL"
    text_id = "textId" if "textId" in cols else "NULL"
    domains = {0: ""}
    if "domainId" not in cols:
        return domains
    for dom, txt, tid in conn.execute(f"SELECT domainId, {text}, {text_id} FROM {NVTX} WHERE eventType = ?",
                                      (NVTX_DOMAIN_CREATE,)):
        domains[int(dom)] = txt if txt is not None else strings.get(tid, "")
    return domains


def nvtx_spans(conn: sqlite3.Connection, strings: dict[int, str], domains: Optional[Iterable[str]] = None,
               present: Optional[set[str]] = None) -> dict[int, list[Span]]:
    """Closed push/pop and start/end ranges per globalTid, optionally only those of `domains`.

    `present`: the file's tables, if already read. A `domains` filter naming no domain created in
    the file is dropped (the runner creates its domain inside the capture; other reports may not).
    """
    if NVTX not in (tables(conn) if present is None else present):
        raise NsysSchemaError(f"no {NVTX} table: was the run traced with --trace=nvtx?")
    cols = columns(conn, NVTX)
    text = "text" if "text" in cols else "NULL"
    text_id = "textId" if "textId" in cols else "NULL"
    domain_col = "domainId" if "domainId" in cols else "0"
    names = nvtx_domains(conn, strings, cols)
    wanted = None if domains is None else set(domains)
    if wanted is not None and not wanted & set(names.values()):
        wanted = None          # the domain's creation fell outside the capture range: keep every range
    spans: dict[int, list[Span]] = defaultdict(list)
    query = (f"SELECT start, end, {text}, {text_id}, {domain_col}, globalTid FROM {NVTX} "
             f"WHERE eventType IN (?, ?) AND end IS NOT NULL")
    for start, end, txt, tid, dom, gtid in conn.execute(query, (NVTX_PUSH_POP, NVTX_START_END)):
        if wanted is not None and names.get(int(dom or 0), "") not in wanted:
            continue
        name = txt if txt is not None else strings.get(tid)
        if name is not None:
            spans[int(gtid)].append(Span(name, int(start), int(end)))
    return spans


def runtime_launches(conn: sqlite3.Connection,
                     present: Optional[set[str]] = None) -> dict[tuple[Optional[int], int], tuple[int, int]]:
    """(pid, correlationId) -> (globalTid, call start ns) of each CUDA runtime/driver call."""
    launches: dict[tuple[Optional[int], int], tuple[int, int]] = {}
    present = tables(conn) if present is None else present
    for table in (RUNTIME, "CUPTI_ACTIVITY_KIND_DRIVER"):
        if table not in present:
            continue
        for corr, gtid, start in conn.execute(f"SELECT correlationId, globalTid, start FROM {table}"):
            launches.setdefault((_pid(gtid), int(corr)), (int(gtid), int(start)))
    if not launches:
        raise NsysSchemaError(f"no {RUNTIME} rows: was the run traced with --trace=cuda?")
    return launches


def _gpu_rows(conn: sqlite3.Connection, strings: dict[int, str], present: set[str]) -> list[dict]:
    """Kernels, memsets and memcpys: name, kind, duration, bytes, correlationId, pid."""
    rows: list[dict] = []
    for table, kind in ((KERNEL, "kernel"), (MEMSET, "memset"), (MEMCPY, "memcpy")):
        if table not in present:
            continue
        cols = columns(conn, table)
        pid_col = _pick(cols, "globalPid", "globalTid") or "NULL"
        extra = {"kernel": [_pick(cols, "demangledName", "name") or "NULL", _pick(cols, "shortName") or "NULL"],
                 "memset": [_pick(cols, "bytes") or "NULL", "NULL"],
                 "memcpy": [_pick(cols, "bytes") or "NULL", _pick(cols, "copyKind") or "NULL"]}[kind]
        query = f"SELECT start, end, correlationId, {pid_col}, {extra[0]}, {extra[1]} FROM {table}"
        for start, end, corr, gpid, a, b in conn.execute(query):
            row = {"kind": kind, "duration_ns": int(end) - int(start), "corr": int(corr), "pid": _pid(gpid),
                   "bytes": None, "short_name": None}
            if kind == "kernel":
                row["name"] = strings.get(a, str(a)) if isinstance(a, int) else (a or "?")
                row["short_name"] = strings.get(b) if isinstance(b, int) else b
            elif kind == "memset":
                row["name"], row["bytes"] = "memset", None if a is None else int(a)
            else:
                row["name"], row["bytes"] = f"memcpy {MEMCPY_KINDS.get(b, b)}", None if a is None else int(a)
            rows.append(row)
    return rows


def attributed_activities(path: Path | str, domains: Optional[Iterable[str]] = None) -> list[Activity]:
    """Every GPU activity of the file with the NVTX range stack around its launch call."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        present = tables(conn)
        strings = _strings(conn, present)
        spans = nvtx_spans(conn, strings, domains, present)
        launches = runtime_launches(conn, present)
        rows = _gpu_rows(conn, strings, present)
    finally:
        conn.close()
    by_corr = {c: v for (_, c), v in launches.items()}
    by_thread: dict[int, list[int]] = defaultdict(list)
    where: list[Optional[tuple[int, int]]] = []
    for row in rows:
        launch = launches.get((row["pid"], row["corr"])) or by_corr.get(row["corr"])
        if launch is None:
            where.append(None)
            continue
        gtid, t = launch
        where.append((gtid, len(by_thread[gtid])))
        by_thread[gtid].append(t)
    shared = global_spans(spans)
    stacks = {gtid: thread_stacks(spans, gtid, times, shared) for gtid, times in by_thread.items()}
    return [Activity(row["name"], row["kind"], row["duration_ns"],
                     stacks[loc[0]][loc[1]] if loc else (), row["bytes"], row["short_name"])
            for row, loc in zip(rows, where)]
