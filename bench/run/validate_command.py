"""The `validate` driver: every variant on every boundary pattern, with poisoned buffers, plus the contract probes.

It prints nothing itself: notices go through `notify`; the caller shows the matrix and the verdict.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from bench.spec.errors import UserError
from bench.results.io import make_out_dir
from bench.harness.patterns import Pattern, catalogue, check_unique_names, load_patterns, random_patterns
from bench.run.validate_settings import (RECORDS_FILE, ValidateSettings, check_resume, given_or_saved,
                                         load_settings, patterns_sha256, save_settings)


@dataclass
class ValidateResult:
    out: Path
    names: list[str]
    backend: str
    device: str
    dtype: str
    records: list[dict[str, Any]]
    summary: dict[str, Any]                      # bench.harness.validate.summarize
    probe_backends: list[str]
    probes: Optional[dict[str, Any]]             # bench.harness.contract_probes.run_probes, None with --no-probes

    @property
    def passed(self) -> bool:
        return bool(self.summary["passed"])

    def as_json(self) -> dict[str, Any]:
        return {**self.summary, "backend": self.backend, "device": self.device, "dtype": self.dtype,
                "records": str(self.out / "validation.jsonl"),
                "contract_probes": None if self.probes is None else
                {"backends": self.probe_backends, "all_match_contract": self.probes["all_match_contract"]}}


def resolve(backend: str, device: str, dtype: Optional[str]) -> tuple[str, str, str]:
    """(backend, device, dtype); dtype defaults to bfloat16 on CUDA, float32 on CPU."""
    from bench.spec.grid import DTYPES
    from bench.run.sweep import resolve_target
    target = resolve_target(backend, device)
    dtype = dtype or ("bfloat16" if target.device == "cuda" else "float32")
    if dtype not in DTYPES:
        raise UserError(f"--dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    return target.backend, target.device, dtype


def validate_command(out: Path, variants: Optional[list[str]], backend: Optional[str] = None,
                     device: Optional[str] = None, dtype: Optional[str] = None, heads: Optional[int] = None,
                     head_dim: Optional[int] = None, random_count: Optional[int] = None,
                     seed: Optional[int] = None, patterns_file: Optional[Path] = None, isolation: str = "process",
                     probes: bool = True, spare_workers: Optional[int] = None, resume: bool = False,
                     notify: Callable[[str], None] = print) -> ValidateResult:
    """Check the variants against the dense reference on the catalogue, random and user patterns.

    A flag left out (None) takes the saved run's value with --resume, else its default; the settings
    are saved in DIR/validate.json, and a resume that would change them is refused."""
    from bench.harness.contract_probes import probe_backends as backends_to_probe, run_probes
    from bench.harness.validate import run_validation, summarize
    from bench.run.lock import DirLock
    from bench.harness.registry import VARIANTS

    if isolation not in ("process", "none"):
        raise UserError(f"--isolation must be process or none, not {isolation!r}")
    out = make_out_dir(out)           # an unwritable --out is one line before anything is announced
    saved = load_settings(out) if resume else None
    flags = given_or_saved({"variants": tuple(variants) if variants else None, "backend": backend,
                            "device": device, "dtype": dtype, "heads": heads, "head_dim": head_dim,
                            "random": random_count, "seed": seed,
                            "patterns_file": str(Path(patterns_file).resolve()) if patterns_file else None}, saved)
    names = list(flags["variants"] or VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise UserError(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    patterns: list[Pattern] = catalogue() + random_patterns(flags["seed"], flags["random"])
    if flags["patterns_file"] is not None:
        patterns += load_patterns(Path(flags["patterns_file"]))
    check_unique_names(patterns, "a user pattern reuses a built-in name:")
    backend_name, device, dtype = resolve(flags["backend"], flags["device"], flags["dtype"])
    settings = ValidateSettings(tuple(names), backend_name, device, dtype, flags["heads"], flags["head_dim"],
                                flags["random"], flags["seed"], flags["patterns_file"], patterns_sha256(patterns))
    heads, head_dim, seed = settings.heads, settings.head_dim, settings.seed
    with DirLock(out):
        records_path = out / RECORDS_FILE
        has_records = records_path.is_file() and records_path.stat().st_size > 0
        if resume:
            check_resume(out, saved, settings, has_records)
            if not has_records:
                notify(f"validate --resume: {out} holds no records yet; starting the run")
        elif has_records:             # refused before the saved settings could be overwritten
            raise UserError(f"{records_path} already holds records: pass --resume to continue it, or another --out")
        save_settings(out, settings)
        notify(f"validate: {len(names)} variants x {len(patterns)} patterns, backend={backend_name} "
               f"device={device} dtype={dtype} heads={heads} head_dim={head_dim} -> {out}")
        done = {"n": 0}

        def progress(record: dict[str, Any]) -> None:
            done["n"] += 1
            if done["n"] % (10 * len(names)) == 0:
                notify(f"  {done['n'] // len(names)}/{len(patterns)} {record['pattern']}")

        records = run_validation(names, patterns, backend_name, device, dtype, out, heads=heads,
                                 head_dim=head_dim, seed=seed, isolation=isolation, on_record=progress,
                                 spare_workers=(8 if device == "cuda" else 3) if spare_workers is None
                                 else spare_workers, resume=resume)
        probe_backends = backends_to_probe(backend_name)
        report = None
        if probes:
            report = run_probes(probe_backends, out, device=device, dtype=dtype, heads=heads, head_dim=head_dim,
                                isolation=isolation)
    return ValidateResult(Path(out), names, backend_name, device, dtype, records, summarize(records),
                          probe_backends, report)


