"""breakdown.json: per variant, per range, device time (ms per rep), kernels and bytes (its table: plots/console.py).

    {"schema": 1, "tool": "nsys"|"torch"|"ncu", "config": {..., "config_id"}, "reps": int,
     "variants": {variant: {"ranges": {range: {"gpu_ms", "kernels": {name: {"count", "ms", ...}},
                                               "bytes"}}}},
     "difference": {range: ms (second variant - first)} | null, "nvtx_overhead": {...} | null,
     "files": {what: path relative to breakdown.json}, "ncu": {"clock_control", "cache_control"} (ncu)}

On the torch tool without CUDA, "gpu_ms" holds CPU-op time (the reference backend on CPU).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Sequence

from bench.spec.grid import Config
from bench.spec.names import ordered_ranges
from profiles.attribution import difference

SCHEMA = 1


def build_breakdown(tool: str, config: Config, variant_order: Sequence[str], variants: dict[str, dict],
                    reps: int, nvtx_overhead: Optional[dict] = None, files: Optional[dict] = None,
                    extra: Optional[dict] = None) -> dict:
    """Assemble the document; variants keep the order given on the command line."""
    ordered = {v: variants.get(v, {"ranges": {}}) for v in variant_order}
    for data in ordered.values():
        data["ranges"] = {r: data["ranges"][r] for r in ordered_ranges(list(data["ranges"]))}
        data["total_gpu_ms"] = sum(r["gpu_ms"] for r in data["ranges"].values())
    diff = difference(ordered, list(variant_order))
    return {"schema": SCHEMA, "tool": tool, "config": {**config.as_dict(), "config_id": config.config_id},
            "reps": reps, "variants": ordered,
            "difference": None if diff is None else {r: diff[r] for r in ordered_ranges(list(diff))},
            "nvtx_overhead": nvtx_overhead, "files": files or {}, **(extra or {})}


def relative_files(files: dict[str, str], out_dir: Path) -> dict[str, str]:
    """Paths as seen from breakdown.json's folder, so a copied or committed profile still finds its files."""
    return {what: Path(os.path.relpath(Path(path).resolve(), out_dir.resolve())).as_posix()
            for what, path in files.items()}


def write_breakdown(out_dir: Path, breakdown: dict) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "breakdown.json"
    path.write_text(json.dumps(breakdown, indent=2, sort_keys=False))
    return path
