"""Shrink an nsys SQLite export to what `profiles.nsys_sqlite` reads (for test fixtures).

Keeps the activity, runtime and NVTX tables and the StringIds rows they reference; drops every other
table; VACUUMs. `python -m profiles.nsys_trim IN.sqlite OUT.sqlite`
"""
from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path

from profiles.nsys_sqlite import KERNEL, MEMCPY, MEMSET, NVTX, RUNTIME, STRINGS, columns, tables

KEEP = {KERNEL, MEMSET, MEMCPY, RUNTIME, "CUPTI_ACTIVITY_KIND_DRIVER", NVTX, STRINGS}
STRING_COLUMNS = ("demangledName", "shortName", "mangledName", "textId", "nameId")


def trim(src: Path, dst: Path) -> int:
    """Copy `src` to `dst` trimmed; returns the new size in bytes."""
    shutil.copyfile(src, dst)
    db = sqlite3.connect(dst)
    try:
        present = tables(db)
        for name, kind in db.execute("SELECT name, type FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall():
            if name not in KEEP and kind in ("table", "view"):
                db.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
        if STRINGS in present:
            used: set[int] = set()
            for table in KEEP & present - {STRINGS}:
                for col in STRING_COLUMNS:
                    if col in columns(db, table):
                        used.update(r[0] for r in db.execute(f"SELECT DISTINCT {col} FROM {table}") if r[0] is not None)
            db.execute("CREATE TEMP TABLE used_ids (id INTEGER PRIMARY KEY)")
            db.executemany("INSERT INTO used_ids VALUES (?)", [(i,) for i in used])
            db.execute(f"DELETE FROM {STRINGS} WHERE id NOT IN (SELECT id FROM used_ids)")
        db.commit()
        db.execute("VACUUM")
    finally:
        db.close()
    return dst.stat().st_size


if __name__ == "__main__":
    size = trim(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"{sys.argv[2]}: {size / 1e6:.2f} MB")
