"""What `prefixbench sweep` prints when it ends: the pivot table, then the verdict block.

Plain fixed-width text (no wrapping of configuration labels), so it reads the same in a terminal,
a log file and CI output.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

from plots.backends import backend_terminal
from plots.console import backend_label
from plots.tables import UNSETTLED_NOTE, pivot, pivot_terminal
from plots.verdict import build_verdict, to_terminal


def sweep_summary(records: Iterable[Any], validation: Optional[list[dict]] = None) -> str:
    """The pivot (ms: median +-half-width of the 95% interval) and the verdict computed from the records."""
    records = list(records)
    if not records:
        return "no records\n"
    backends = ", ".join(dict.fromkeys(backend_label(r.backend, r.device) for r in records))
    head = f"All results, backend {backends} (ms: median +-95% interval half-width, as % of the median)\n"
    table = pivot(records)
    note = UNSETTLED_NOTE + "\n" if any(not c.converged for _, _, cells in table.rows for c in cells) else ""
    side = backend_terminal(records)
    return (head + pivot_terminal(table) + note + ("\n" + side if side else "") + "\n"
            + to_terminal(build_verdict(records, validation)))
