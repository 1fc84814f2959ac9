"""The sweep driver: grid -> (isolated worker) probes and interleaved measurement -> records.

The parent process never touches CUDA: each configuration runs in a worker that a dead context,
an OOM or a hard crash cannot take down. Records of a configuration are appended and flushed as
soon as it finishes, so Ctrl-C or a crash loses at most the configuration in flight, and
`--resume` skips what is recorded.
"""
from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from bench.distributed import ProcessGroup, RankInfo, merge_rank_files, rank_file, shard
from bench import measure
from bench.environment import environment, git_revision, write_env_file
from bench.errors import UserError
from bench.io import write_json
from bench.grid import Config, Suite, check_suite
from bench.isolation import InProcess, IsolatedWorker, Outcome, Worker
from bench.io import RecordFile, open_results, read_records, write_results_csv
from bench.records import Record, build_records, done_keys
from bench.registry import registry
from bench.workloads import packed_batch
from prefixlm_attn.backends import resolve_backend_name

ProgressHook = Callable[[Config, list[Record]], None]


@dataclass
class Target:
    backend: str
    device: str            # what the worker uses ("cuda" or "cpu")


def resolve_target(backend: str, device: str) -> Target:
    """Backend and device for sweep, profile and validate: auto -> fa3 on CUDA, the reference on CPU.
    On CUDA without FA3, auto refuses: a reference figure must be asked for, never slipped in."""
    from prefixlm_attn.backends import BACKENDS
    has_cuda = torch.cuda.is_available()
    if device == "auto":
        device = "cuda" if has_cuda else "cpu"
    if device not in ("cuda", "cpu"):
        raise UserError(f"--device {device!r}: choose auto, cuda or cpu")
    if device == "cuda" and not has_cuda:
        raise UserError("--device cuda: no CUDA device is visible")
    try:
        name = resolve_backend_name(backend) if device == "cuda" or backend != "auto" else "reference"
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if name == "fa3" and device == "cpu":
        raise UserError("--backend fa3 needs --device cuda (FA3 is a Hopper kernel)")
    if name == "fa3" and not BACKENDS["fa3"].available():
        raise UserError("--backend fa3: FA3 did not load (no importable build with torch.ops.flash_attn_3)")
    if backend == "auto" and device == "cuda" and name == "reference":
        raise UserError("--backend auto: CUDA is here but FA3 did not load; run `prefixbench doctor` for the fix, "
                        "or pass --backend reference to time the PyTorch reference on the GPU")
    return Target(name, device)


def suite_from_flags(suite: Optional[str], **flags) -> tuple[Suite, bool]:
    """The suite file (default: `default`, or `smoke` on a machine without CUDA) with flags applied;
    and whether the smoke fallback was taken."""
    from bench.grid import load_suite
    fallback = suite is None and not torch.cuda.is_available()
    base = load_suite(suite or ("smoke" if fallback else "default"))
    return base.with_overrides(**flags), fallback


@dataclass
class SweepResult:
    records: list[Record] = field(default_factory=list)
    skipped_configs: int = 0
    results_path: Optional[Path] = None
    csv_path: Optional[Path] = None          # results.csv: every record of results.jsonl, one flat row each


def measure_one_config(worker: Worker, config: Config, names: list[str], target: Target, suite: Suite,
                       rank: RankInfo) -> list[Record]:
    """Probe each implementation alone (so one crash cannot hide another's numbers), then measure
    the survivors interleaved."""
    batch = packed_batch(config)                 # packed once, here; the worker gets it as data
    probes: dict[str, Outcome] = {}
    for name in names:
        probes[name] = worker.call(measure.probe, config=config, batch=batch, name=name,
                                   backend=target.backend, device=target.device)
    alive = [n for n in names if probes[n].ok and "skipped" not in probes[n].value]
    measured = None
    if alive:
        measured = worker.call(measure.measure_config, config=config, batch=batch, names=alive,
                               backend=target.backend, device=target.device, timing=suite.timing)
    return build_records(config, batch, [registry()[n] for n in names], target.backend,
                         target.device, rank.rank, rank.local_rank if target.device == "cuda" else None,
                         probes, measured)


def write_env(worker: Worker, out_dir: Path, target: Target, suite: Suite, rank: RankInfo) -> dict:
    """The worker's environment (where the numbers are measured) plus the run's settings, to env.json."""
    outcome = worker.call(environment, backend=target.backend, device=target.device)
    env = outcome.value if outcome.ok else {"environment_error": outcome.error}
    env.update(date_utc=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"), git_revision=git_revision(),
               seed=suite.seed, suite=suite.name, argv=sys.argv,
               timing=asdict(suite.timing), world_size=rank.world_size, cpu_reference=target.device == "cpu")
    write_env_file(out_dir, env, rank.rank)
    return env


def run_sweep(suite: Suite, out_dir: Path, target: Target, *, resume: bool = False, isolation: str = "process",
              rank: Optional[RankInfo] = None, on_config: Optional[ProgressHook] = None,
              on_start: Optional[Callable[[int], None]] = None) -> SweepResult:
    check_suite(suite)
    rank = rank or RankInfo.from_env()
    out_dir = Path(out_dir)
    results = open_results(out_dir, "results.jsonl", resume)
    group = ProcessGroup(rank)
    sink = RecordFile(rank_file(out_dir, rank.rank) if rank.distributed else results)
    done = done_keys(read_records([results, sink.path])) if resume else set()
    done |= group.broadcast(done)           # rank 0's merged file may live on another node
    names = suite.implementations()
    configs = suite.configs()
    mine = shard(configs, Config.cost, rank.rank, rank.world_size)
    todo = [c for c in mine if not all((c.config_id, n) in done for n in names)]
    result = SweepResult(skipped_configs=len(mine) - len(todo), results_path=results,
                         csv_path=results.with_name("results.csv"))
    env = {}
    if target.device == "cuda" and rank.distributed and "CUDA_VISIBLE_DEVICES" not in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = str(rank.local_rank)
    worker: Worker = IsolatedWorker(env=env) if isolation == "process" else InProcess()
    try:
        write_env(worker, out_dir, target, suite, rank)
        spun = worker.call(measure.spin_up, device=target.device)
        if spun.ok and rank.rank == 0 and target.device == "cuda":
            write_json(out_dir / "clocks_after_spin_up.json", spun.value)
        if on_start:
            on_start(len(todo))
        for config in todo:
            missing = [n for n in names if (config.config_id, n) not in done]
            records = measure_one_config(worker, config, missing, target, suite, rank)
            for rec in records:
                sink.append(rec.to_json())
            result.records.extend(records)
            if on_config:
                on_config(config, records)
    finally:
        worker.close()
    if rank.distributed:
        gathered = group.gather([r.to_json() for r in result.records])
        if rank.rank == 0:
            merge_rank_files(out_dir, rank.world_size, [c.config_id for c in configs], names,
                             extra_records=[r for recs in gathered for r in recs])
        group.barrier()                         # rank 0 may still be reading the rank files until here
        if rank.rank != 0:
            sink.path.unlink(missing_ok=True)   # rank 0 holds them now (on its node)
        group.close()
    if rank.rank == 0:                          # the whole file (resumed runs included), after any merge
        write_results_csv(read_records([results]), result.csv_path)
    return result
