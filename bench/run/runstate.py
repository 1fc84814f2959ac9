"""What a run directory remembers: its grid (`DIR/run.json`), and what --resume still has to measure.

`run.json` holds the resolved suite (axes, run settings, timing) the sweep started with, so
`sweep --out DIR --resume` continues that grid without repeating its flags; a flag that would
change it is refused, naming the difference. It also holds the absolute path and SHA-256 of every
`file:`/`batches:` input, so a resume from any directory finds them, and an input edited since is
named and refused (unless `--allow-changed`: then its new contents are measured and recorded).

On resume a configuration counts as recorded only when every implementation has a record (and,
with --retry-failed, none failed); any other
configuration is measured again whole, and its earlier records are superseded, so the file holds
each (configuration, implementation) once and paired numbers always come from one round set.
"""
from __future__ import annotations

import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from bench.spec.distributions import file_sha256, input_file
from bench.spec.errors import UserError
from bench.spec.grid import Config, GridFlags, Suite, TimingOptions, load_suite
from bench.results.io import read_json_object, write_json, write_jsonl
from bench.results.records import FAILED

RUN_FILE = "run.json"
# Suite field -> the flag that sets it, for the refusal's one line
FLAGS = {"name": "--suite", "variants": "--variant", "peers": "--peer", "distributions": "--distribution",
         "tokens": "--tokens", "heads": "--heads", "head_dims": "--head-dim", "dtypes": "--dtype",
         "seed": "--seed", "context": "--context", "backends": "--backend", "device": "--device",
         "warmup": "--warmup", "min_reps": "--min-reps", "max_reps": "--max-reps",
         "target_rel_ci": "--target-rel-ci", "time_cap_s": "--time-cap", "phase_reps": "--phase-reps",
         "l2_flush": "--l2-flush", "cuda_graph": "--cuda-graph", "mode": "--timing", "block": "--block"}


def suite_to_json(suite: Suite) -> dict[str, Any]:
    return asdict(suite)


def suite_from_json(obj: dict[str, Any], where: str) -> Suite:
    try:
        known = {f.name for f in fields(Suite)} - {"timing"}
        kwargs = {k: _tuples(v) for k, v in obj.items() if k in known}
        if isinstance(obj.get("backend"), str) and "backends" not in obj:   # a grid saved before the axis
            kwargs["backends"] = (obj["backend"],)
        return Suite(**kwargs, timing=TimingOptions(**{k: _tuples(v) for k, v in obj.get("timing", {}).items()}))
    except TypeError as exc:
        raise UserError(f"{where}: not a saved grid ({exc})") from None


def _tuples(value: Any) -> Any:
    """JSON lists back to the suite's tuples (nested: watch_pairs)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def input_files(suite: Suite) -> dict[str, dict[str, str]]:
    """Axis value -> {"path" (absolute), "sha256"} of every user file the grid reads."""
    out = {}
    for spec in suite.distributions:
        source = input_file(spec) if isinstance(spec, str) else None
        if source is not None:
            out[spec] = source.as_dict()
    return out


def save_run(out_dir: Path, suite: Suite, argv: Optional[list[str]] = None) -> Path:
    return write_json(Path(out_dir) / RUN_FILE, {"suite": suite_to_json(suite), "argv": argv or sys.argv,
                                                 "inputs": input_files(suite)}, newline=True)


def changed_inputs(out_dir: Path) -> list[str]:
    """One phrase per input of DIR/run.json whose file is gone or holds other bytes than it did."""
    obj = read_json_object(Path(out_dir) / RUN_FILE) or {}
    out = []
    for spec, saved in (obj.get("inputs") or {}).items():
        if not isinstance(saved, dict) or not saved.get("path"):
            continue
        now = file_sha256(saved["path"])
        if now is None:
            out.append(f"{spec}: {saved['path']} no longer exists")
        elif now != saved.get("sha256"):
            out.append(f"{spec}: {saved['path']} changed (sha256 {str(saved.get('sha256'))[:12]} -> {now[:12]})")
    return out


def check_inputs(out_dir: Path, allow_changed: bool, notify: Callable[[str], None]) -> bool:
    """Refuse a resume whose inputs changed since the run began, naming them; with `allow_changed`, say so
    and go on. True when some input changed (run.json is then saved again with the new hashes)."""
    changed = changed_inputs(out_dir)
    if not changed:
        return False
    if not allow_changed:
        raise UserError(f"--resume: an input changed since {Path(out_dir) / RUN_FILE} was written "
                        f"({'; '.join(changed)}); pass --allow-changed to measure its new contents, "
                        "or use another --out")
    for line in changed:
        notify(f"resume: {line}; measuring its new contents (--allow-changed)")
    return True


def saved_argv(out_dir: Path) -> Optional[list[str]]:
    obj = read_json_object(Path(out_dir) / RUN_FILE) or {}
    argv = obj.get("argv")
    return argv if isinstance(argv, list) else None


def load_run(out_dir: Path) -> Optional[Suite]:
    """The grid saved in DIR, or None for a directory written before grids were saved."""
    path = Path(out_dir) / RUN_FILE
    obj = read_json_object(path)
    if obj is None:
        return None
    if not isinstance(obj.get("suite"), dict):
        raise UserError(f"{path}: no saved grid ('suite')")
    return suite_from_json(obj["suite"], str(path))


def grid_differences(saved: Suite, requested: Suite) -> list[str]:
    """`--flag saved -> given` for every setting that differs (the description does not count)."""
    out = []
    pairs = [(f.name, getattr(saved, f.name), getattr(requested, f.name)) for f in fields(Suite)
             if f.name not in ("description", "timing")]
    pairs += [(f.name, getattr(saved.timing, f.name), getattr(requested.timing, f.name)) for f in fields(TimingOptions)]
    for name, a, b in pairs:
        if a != b:
            out.append(f"{FLAGS.get(name, name)} {_show(a)} -> {_show(b)}")
    return out


def _show(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def check_same_grid(out_dir: Path, saved: Suite, requested: Suite) -> None:
    diff = grid_differences(saved, requested)
    if diff:
        raise UserError(f"--resume: {Path(out_dir) / RUN_FILE} holds another grid ({'; '.join(diff)}); "
                        "drop the flag to continue that run, or use another --out")


def resume_suite(out_dir: Path, suite_name: Optional[str], flags: GridFlags) -> Optional[Suite]:
    """With --resume: the saved grid with the given flags applied, refused when they change it.

    None when DIR holds no saved grid (the flags then define it, as for a new run)."""
    saved = load_run(out_dir)
    if saved is None:
        return None
    requested = saved.with_flags(flags)
    if suite_name is not None and Path(suite_name).stem != saved.name:
        requested = load_suite(suite_name).with_flags(flags)
    check_same_grid(out_dir, saved, requested)
    return saved


def recorded_configs(records: Iterable[dict], configs: list[Config], names: list[str],
                     retry_failed: bool = False) -> set[str]:
    """Configuration ids whose every implementation has a record (with retry_failed: and none failed)."""
    status: dict[tuple[str, str], str] = {}
    for r in records:
        if r.get("status"):
            status.setdefault((r.get("config_id"), r.get("variant")), r["status"])
    done = set()
    for c in configs:
        got = [status.get((c.config_id, n)) for n in names]
        if all(got) and not (retry_failed and any(s in FAILED for s in got)):
            done.add(c.config_id)
    return done


def supersede(path: Path, records: list[dict], configs: list[Config], done: set[str]) -> int:
    """Rewrite `path` (temporary file + rename) without the records of grid configurations that will
    be measured again, and without duplicate (configuration, implementation) lines; returns how many
    lines were dropped."""
    grid = {c.config_id for c in configs}
    keep, seen = [], set()
    for r in records:
        key = (r.get("config_id"), r.get("variant"))
        if key in seen or (key[0] in grid and key[0] not in done):
            continue
        seen.add(key)
        keep.append(r)
    if len(keep) != len(records):
        write_jsonl(path, keep)
    return len(records) - len(keep)


def rerun_target(out_dir: Path, requested: Suite, now: Optional[str] = None) -> tuple[Path, bool, str]:
    """Where a sweep without --resume goes when DIR already holds records (the README's job run twice).

    The same grid: DIR itself, continued as --resume would (nothing is measured twice); another grid
    (or none saved): a fresh timestamped sibling, DIR-YYYYMMDD-HHMMSS. Returns (directory, resume, the
    line that says so on stderr)."""
    out_dir = Path(out_dir)
    saved = load_run(out_dir)
    diff = grid_differences(saved, requested) if saved is not None else ["no saved grid"]
    if not diff:
        return out_dir, True, (f"prefixbench: {out_dir} already holds a run of this grid: continuing it "
                               "(as --resume does); a fresh run needs another --out")
    from datetime import datetime, timezone
    stamp = now or datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    fresh, n = out_dir.with_name(f"{out_dir.name}-{stamp}"), 2
    while fresh.exists():
        fresh, n = out_dir.with_name(f"{out_dir.name}-{stamp}-{n}"), n + 1
    return fresh, False, (f"prefixbench: {out_dir} holds another run ({'; '.join(diff)}); writing this one to "
                          f"{fresh} (`--out {out_dir} --resume` continues that run)")
