"""`prefixbench validate`: every variant on every boundary pattern, with poisoned buffers."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from bench.errors import UserError
from bench.patterns import Pattern, catalogue, check_unique_names, load_patterns, random_patterns

STYLES = {"ok": "green", "wrong": "bold red", "unwritten": "bold magenta", "crashed": "bold red"}


def _resolve(backend: str, device: str, dtype: Optional[str]) -> tuple[str, str, str]:
    from bench.grid import DTYPES
    from bench.sweep import resolve_target
    target = resolve_target(backend, device)
    dtype = dtype or ("bfloat16" if target.device == "cuda" else "float32")
    if dtype not in DTYPES:
        raise UserError(f"--dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    return target.backend, target.device, dtype


def _cell(record: dict[str, Any]) -> str:
    outcome = record["outcome"]
    details = record["details"]
    text = outcome
    if outcome == "wrong":
        worst = max(details.get("rel_err", {}).items(), key=lambda kv: kv[1], default=None)
        text += f" {worst[0]} {worst[1]:.1e}" if worst else ""
        if details.get("padding_nonzero_rows"):
            text += " pad"
    elif outcome == "unwritten":
        from bench.validate import format_ranges
        text += " " + " ".join(f"{name}:{format_ranges(rows)}" for name, rows in details.get("unwritten_rows", {}).items())
    if outcome != "ok" and record["expected_to_fail"]:
        return f"[yellow]{text} (expected)[/yellow]"
    return f"[{STYLES.get(outcome, 'red')}]{text}[/]"


def print_matrix(console: Console, records: list[dict[str, Any]], variants: list[str]) -> None:
    table = Table(title="prefixbench validate", show_lines=False)
    table.add_column("pattern", no_wrap=True)
    table.add_column("prefix / causal", no_wrap=True, overflow="ellipsis", max_width=24)
    for v in variants:
        table.add_column(v, overflow="fold")
    rows: dict[str, dict[str, Any]] = {}
    for r in records:
        rows.setdefault(r["pattern"], {"lens": r, "cells": {}})["cells"][r["variant"]] = r
    for name, row in rows.items():
        lens = row["lens"]
        compact = f"{','.join(map(str, lens['prefix_lens']))} / {','.join(map(str, lens['causal_lens']))}"
        table.add_row(name, compact,
                      *(_cell(row["cells"][v]) if v in row["cells"] else "" for v in variants))
    console.print(table)


def validate(
    out: Path = typer.Option(..., "--out", help="Directory for validation.jsonl, validation_summary.json, "
                                                "contract_probes.json."),
    variant: Optional[list[str]] = typer.Option(None, "--variant", help="Variant to check (repeatable; default all)."),
    backend: str = typer.Option("auto", help="auto | fa3 | reference (auto: fa3 on CUDA when it loads)."),
    device: str = typer.Option("auto", help="auto | cuda | cpu."),
    dtype: Optional[str] = typer.Option(None, help="float32 | bfloat16 | float16 (default bfloat16 on cuda, "
                                                   "float32 on cpu)."),
    heads: int = typer.Option(2, min=1, help="Attention heads."),
    head_dim: int = typer.Option(64, min=1, help="Head dimension."),
    random_count: int = typer.Option(20, "--random", min=0, help="Random patterns added to the catalogue."),
    seed: int = typer.Option(0, help="Seed for random patterns and tensors."),
    patterns_file: Optional[Path] = typer.Option(None, "--patterns", help="Extra patterns: .json/.jsonl/.csv with "
                                                 "name, prefix_lens, causal_lens[, token_budget]."),
    isolation: str = typer.Option("process", help="process (crash-safe worker) | none (in-process, fast)."),
    probes: bool = typer.Option(True, "--probes/--no-probes", help="Also run the kernel contract probes."),
    spare_workers: Optional[int] = typer.Option(None, min=0, help="Pre-started spare workers (process isolation): "
                                                "an expected crash swaps one in instead of waiting for a fresh "
                                                "start. Default: 8 on CUDA (a fresh context + FA3 load takes "
                                                "seconds), 3 on CPU."),
    resume: bool = typer.Option(False, help="Keep the cases already in DIR/validation.jsonl and run the rest."),
) -> None:
    """Check every variant on every boundary pattern against the dense reference, with poisoned buffers.

    Exit codes:

    0 = every recommended variant is ok on every pattern, and no variant gives a silent wrong answer
    (wrong or unwritten); crashes of non-recommended variants are reported, not failures.

    1 = a recommended variant is not ok somewhere, or some variant is wrong/unwritten.

    2 = bad input (flags, patterns file).
    """
    from bench.contract_probes import run_probes
    from bench.validate import run_validation, summarize
    from prefixlm_attn.variants import VARIANTS

    names = list(variant) if variant else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise UserError(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    if isolation not in ("process", "none"):
        raise UserError(f"--isolation must be process or none, not {isolation!r}")
    patterns: list[Pattern] = catalogue() + random_patterns(seed, random_count)
    if patterns_file is not None:
        patterns += load_patterns(patterns_file)
    check_unique_names(patterns, "a user pattern reuses a built-in name:")
    backend_name, device, dtype = _resolve(backend, device, dtype)
    console = Console()
    console.print(f"validate: {len(names)} variants x {len(patterns)} patterns, backend={backend_name} "
                  f"device={device} dtype={dtype} heads={heads} head_dim={head_dim} -> {out}")
    done = {"n": 0}

    def progress(record: dict[str, Any]) -> None:
        done["n"] += 1
        if done["n"] % (10 * len(names)) == 0:
            console.print(f"  [dim]{done['n'] // len(names)}/{len(patterns)} {record['pattern']}[/dim]")

    records = run_validation(names, patterns, backend_name, device, dtype, out, heads=heads, head_dim=head_dim,
                             seed=seed, isolation=isolation, on_record=progress,
                             spare_workers=(8 if device == "cuda" else 3) if spare_workers is None
                             else spare_workers, resume=resume)
    print_matrix(console, records, names)
    summary = summarize(records)
    if probes:
        backends = ["reference"] + (["fa3"] if backend_name == "fa3" else [])
        report = run_probes(backends, out, device=device, dtype=dtype, heads=heads, head_dim=head_dim,
                            isolation=isolation)
        verdict = "match the contract" if report["all_match_contract"] else "[bold red]DIFFER from the contract[/]"
        console.print(f"contract probes ({', '.join(backends)}): rows written {verdict}")
    for line in summary["failures"]:
        console.print(f"[bold red]FAIL[/] {line}")
    verdict = "[green]PASS[/]" if summary["passed"] else "[bold red]FAIL[/]"
    console.print(f"{verdict} ({summary['cases']} cases; records in {out / 'validation.jsonl'})")
    raise typer.Exit(0 if summary["passed"] else 1)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
