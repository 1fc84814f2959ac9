"""What the installed FA3 build supports (head dims, dtypes), read without loading the kernels.

FA3's own install (flash-attention's `hopper/` setup) writes `flash_attn_config.py`, its record of the
`FLASHATTENTION_DISABLE_*` flags it was built with; that file alone gives the head dims and dtypes. A
`flash_attn_build_flags.json` beside it (an installer's richer record, naming the commit) is preferred
when present. The result goes into env.json, and `check_supported` turns a configuration outside the
build into one line naming the flag to unset when reinstalling.
"""
from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path
from typing import Any, Optional

RECORD_NAME = "flash_attn_build_flags.json"
CONFIG_NAME = "flash_attn_config.py"
HEAD_DIMS = (64, 96, 128, 192, 256)
# FA3 dtype -> the names this project uses for it (bench.grid.DTYPES)
DTYPE_ALIASES = {"bf16": ("bfloat16", "bf16"), "fp16": ("float16", "fp16", "half"), "fp8": ("float8_e4m3fn", "fp8")}
INSTALL_ROUTE = "flash-attention's hopper/ install, as that project's README says"


def _config_path() -> Optional[Path]:
    """Where `flash_attn_config.py` lives (top level, as the build folder has it, or inside the package)."""
    for name in ("flash_attn_config", "flash_attn_3.flash_attn_config"):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.origin and Path(spec.origin).is_file():
            return Path(spec.origin)
    return None


def read_config_flags(path: Path) -> dict[str, bool]:
    """The `build_flags` dict of a flash_attn_config.py, read as a literal (the file is not executed)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "CONFIG" for t in node.targets):
            return dict(ast.literal_eval(node.value).get("build_flags", {}))
    return {}


def info_from_flags(flags: dict[str, bool]) -> dict[str, Any]:
    """Head dims, dtypes and backward support from FA3's `FLASHATTENTION_DISABLE_*` flags."""
    def off(name: str) -> bool:
        return bool(flags.get(f"FLASHATTENTION_DISABLE_{name}", False))

    dtypes = ["bf16"] + ([] if off("FP16") else ["fp16"]) + ([] if off("FP8") else ["fp8"])
    return {"head_dims": [d for d in HEAD_DIMS if not off(f"HDIM{d}")], "dtypes": dtypes,
            "backward": not off("BACKWARD"), "varlen": not off("VARLEN"),
            "disabled": sorted(k for k, v in flags.items() if v)}


def fa3_build_info(config_path: Optional[Path] = None) -> dict[str, Any]:
    """{"head_dims", "dtypes", "backward", "varlen", "disabled", "source", ...} of the importable FA3 build.

    Without a build on the path: {"error": "..."} (informational; loading FA3 is checked elsewhere).
    """
    path = config_path or _config_path()
    if path is None:
        return {"error": f"no {CONFIG_NAME} on the Python path (FA3 not installed; see {INSTALL_ROUTE})"}
    for folder in (path.parent, path.parent.parent):
        record = folder / RECORD_NAME
        if record.is_file():
            try:
                data = json.loads(record.read_text())
            except (OSError, ValueError) as exc:
                return {"error": f"{record}: unreadable ({exc})"}
            return {**data, "source": str(record)}
    try:
        flags = read_config_flags(path)
    except (OSError, SyntaxError, ValueError) as exc:
        return {"error": f"{path}: unreadable ({exc})"}
    return {**info_from_flags(flags), "source": str(path)}


def _fa3_dtype(dtype: str) -> str:
    for fa3_name, aliases in DTYPE_ALIASES.items():
        if dtype in aliases:
            return fa3_name
    return dtype


def check_supported(dtype: str, head_dim: int, info: Optional[dict[str, Any]] = None) -> Optional[str]:
    """None when the build covers (dtype, head_dim), else one line naming the rebuild flag.

    An unknown build (no record) is not judged here: FA3 itself reports what it lacks.
    """
    info = fa3_build_info() if info is None else info
    if "error" in info or "head_dims" not in info:
        return None
    head_dims, dtypes = list(info["head_dims"]), list(info.get("dtypes", ["bf16"]))
    want = _fa3_dtype(dtype)
    if want not in DTYPE_ALIASES:
        return f"FA3 has no {dtype} kernels (it runs bf16, fp16 and fp8 forward only)"
    problems, flags, dims, types = [], [], head_dims, dtypes
    if head_dim not in head_dims:
        if head_dim not in HEAD_DIMS:
            return f"FA3 has no head dim {head_dim} kernel (it has {', '.join(map(str, HEAD_DIMS))})"
        dims = sorted(set(head_dims) | {head_dim})
        problems.append(f"head dim {head_dim}")
        flags.append(f"FLASH_ATTENTION_DISABLE_HDIM{head_dim}")
    if want not in dtypes:
        types = [t for t in DTYPE_ALIASES if t in set(dtypes) | {want}]
        problems.append(want)
        flags.append(f"FLASH_ATTENTION_DISABLE_{want.upper()}")
    if not problems:
        return None
    return (f"this FA3 build lacks {' and '.join(problems)} (built: head dims {','.join(map(str, head_dims))}, "
            f"{','.join(dtypes)}); reinstall it with {' '.join(flags)} unset (would build head dims "
            f"{','.join(map(str, dims))}, {','.join(types)})")
