"""What a validate directory remembers: its settings (`DIR/validate.json`), so --resume measures only what was asked.

`validate --out DIR --resume` continues the saved settings without repeating their flags; a flag (or an
edited patterns file) that would change them is refused with one line naming the difference, because
the kept records would then pass for measurements they are not (another head_dim, dtype or seed).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Optional, Sequence

from bench.results.io import read_json_object, write_json
from bench.spec.errors import UserError

SETTINGS_FILE = "validate.json"
RECORDS_FILE = "validation.jsonl"
FLAGS = {"variants": "--variant", "backend": "--backend", "device": "--device", "dtype": "--dtype",
         "heads": "--heads", "head_dim": "--head-dim", "random": "--random", "seed": "--seed",
         "patterns_file": "--patterns", "patterns_sha256": "the patterns (an edited --patterns file)"}
DEFAULTS = {"heads": 2, "head_dim": 64, "random": 20, "seed": 0}


@dataclass(frozen=True)
class ValidateSettings:
    """Everything a validation record's outcome depends on (isolation, probes and spare workers do not)."""
    variants: tuple[str, ...]
    backend: str                       # resolved: never "auto"
    device: str
    dtype: str
    heads: int
    head_dim: int
    random: int
    seed: int
    patterns_file: Optional[str]       # absolute path
    patterns_sha256: str               # of every pattern checked: names, lengths, budgets

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "variants": list(self.variants)}

    @staticmethod
    def from_json(obj: dict[str, Any], where: str) -> "ValidateSettings":
        try:
            kwargs = {f.name: obj[f.name] for f in fields(ValidateSettings)}
            return ValidateSettings(**{**kwargs, "variants": tuple(kwargs["variants"])})
        except (KeyError, TypeError) as exc:
            raise UserError(f"{where}: not saved validate settings (missing {exc})") from None


def patterns_sha256(patterns: Sequence[Any]) -> str:
    rows = [[p.name, list(p.prefix_lens), list(p.causal_lens), p.token_budget] for p in patterns]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def load_settings(out_dir: Path) -> Optional[ValidateSettings]:
    path = Path(out_dir) / SETTINGS_FILE
    obj = read_json_object(path)
    return None if obj is None else ValidateSettings.from_json(obj, str(path))


def save_settings(out_dir: Path, settings: ValidateSettings) -> Path:
    return write_json(Path(out_dir) / SETTINGS_FILE, settings.to_json(), newline=True)


def differences(saved: ValidateSettings, requested: ValidateSettings) -> list[str]:
    """`--flag saved -> given` for every setting that differs."""
    out = []
    for f in fields(ValidateSettings):
        a, b = getattr(saved, f.name), getattr(requested, f.name)
        if a != b:
            if f.name == "patterns_sha256" and saved.patterns_file != requested.patterns_file:
                continue                                   # the path's change is named already
            show = (lambda v: ",".join(v) if isinstance(v, tuple) else str(v)[:12] if f.name.endswith("sha256")
                    else str(v))
            out.append(f"{FLAGS[f.name]} {show(a)} -> {show(b)}")
    return out


def given_or_saved(given: dict[str, Any], saved: Optional[ValidateSettings]) -> dict[str, Any]:
    """The flags a run uses: each one given, else the saved run's (with --resume), else the default."""
    base = asdict(saved) if saved is not None else {**DEFAULTS, "variants": None, "backend": "auto",
                                                    "device": "auto", "dtype": None, "patterns_file": None}
    return {k: (v if v is not None else base.get(k)) for k, v in given.items()}


def check_resume(out_dir: Path, saved: Optional[ValidateSettings], requested: ValidateSettings,
                 has_records: bool) -> None:
    """Refuse a resume whose records were measured under other settings (or under unknown ones)."""
    path = Path(out_dir) / SETTINGS_FILE
    if saved is None:
        if has_records:
            raise UserError(f"--resume: {Path(out_dir) / RECORDS_FILE} has no saved settings ({path}: written "
                            "by an older version), so its records cannot be matched to these flags; "
                            "use another --out")
        return
    diff = differences(saved, replace(requested))
    if diff:
        raise UserError(f"--resume: {path} holds other settings ({'; '.join(diff)}); drop the flag to "
                        "continue that run, or use another --out")
