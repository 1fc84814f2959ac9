"""Load a results directory (results.jsonl + optional env/validation/breakdown) and group it by configuration.

Records are read through `bench.results.records.Record` (docs/records.md); nothing here recomputes timing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.results.io import read_checked_jsonl, read_json_object, results_path
from bench.results.records import Record, load_records
from bench.spec.errors import UserError

VALIDATION_KEYS = ("variant", "pattern", "outcome")  # what boundary_matrix reads from each validation row


@dataclass
class RunData:
    """Everything one or more result directories hold: typed records, side files as plain dicts."""
    records: list[Record]
    env: list[dict[str, Any]] = field(default_factory=list)
    validation: list[dict[str, Any]] = field(default_factory=list)
    breakdown: list[dict[str, Any]] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)
    skipped_duplicates: list[tuple[str, str, Path]] = field(default_factory=list)
    record_dir: dict[tuple[str, str], Path] = field(default_factory=dict)   # (config, impl) -> its directory
    env_by_dir: dict[Path, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, list[tuple[str, dict[str, Record]]]] = field(default_factory=dict)
    # config -> [(run name, {implementation: ok record})] over every directory, duplicates included,
    # so the verdict can take a configuration's settled delta from whichever run settled it

    def run_names(self) -> set[str]:
        """Every run that holds records (duplicates of an earlier directory's included)."""
        return {name for runs in self.runs.values() for name, _ in runs}

    def add_run_record(self, run: str, rec: Record) -> None:
        runs = self.runs.setdefault(rec.config_id, [])
        if not runs or runs[-1][0] != run:
            found = [r for name, r in runs if name == run]
            if not found:
                runs.append((run, {}))
        if rec.ok:
            next(r for name, r in runs if name == run)[rec.variant] = rec

    def run_dirs(self) -> list[Path]:
        """Directories that contributed records (validate / profile directories add none)."""
        return list(dict.fromkeys(self.record_dir.values()))


def load_dirs(paths: list[str | Path]) -> RunData:
    """Merge several result directories; env/validation/breakdown are kept per directory when present.

    A configuration and implementation recorded in more than one directory is taken from the first
    directory named (so `report peers_flex peers` adds flex_attention to the peers run without doubling
    the rows both runs share); what was skipped is listed in `skipped_duplicates`.
    """
    if not paths:
        raise UserError("give at least one results directory")
    data = RunData(records=[])
    seen: set[tuple[str, str]] = set()
    for path in paths:
        d = Path(path)
        side = d.is_dir() and not (d / "results.jsonl").exists() and any(
            (d / f).is_file() for f in ("validation.jsonl", "breakdown.json"))
        if not side:           # a validate or profile directory alone adds its matrix or breakdown
            p = results_path(path)
            d = p.parent
            for rec in load_records(p):
                data.add_run_record(run_name(d), rec)
                key = (rec.config_id, rec.variant)
                if key in seen:
                    data.skipped_duplicates.append((*key, d))
                    continue
                seen.add(key)
                data.records.append(rec)
                data.record_dir[key] = d
        data.sources.append(d)
        env = read_json_object(d / "env.json")
        if env is not None:
            data.env.append(env)
            data.env_by_dir[d] = env
        if (d / "validation.jsonl").is_file():
            data.validation.extend(read_checked_jsonl(d / "validation.jsonl", VALIDATION_KEYS))
        bd = read_json_object(d / "breakdown.json")
        if bd is not None:
            data.breakdown.append(bd)
    if not data.records:
        raise UserError(f"no results.jsonl in {', '.join(str(p) for p in paths)}")
    return data


def run_name(d: Path) -> str:
    """A run's short name: its directory and the one above it ("review/sweep", "h100/pr_delta")."""
    parts = Path(d).resolve().parts
    return "/".join(parts[-2:]) if len(parts) >= 2 else str(d)


def by_config(records: list[Record]) -> dict[str, list[Record]]:
    """config_id -> its records, in the order first seen (one per implementation)."""
    groups: dict[str, list[Record]] = {}
    for rec in records:
        groups.setdefault(rec.config_id, []).append(rec)
    return groups


def config_sort_key(rec: Record) -> tuple:
    return (str(rec.distribution or ""), int(rec.tokens or 0), str(rec.config_id))
