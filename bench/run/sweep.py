"""The sweep driver: grid -> (isolated worker) probes and interleaved measurement -> records.

The parent process never touches CUDA: each configuration runs in a worker that a dead context,
an OOM, a hang (the per-call timeout) or a hard crash cannot take down. Records of a configuration
are appended and fsynced as soon as it finishes, so Ctrl-C or a crash loses at most the
configuration in flight. The output directory is locked for one writer and remembers its grid
(`run.json`); `--resume` measures every configuration that is not wholly recorded (bench.run.runstate).
Bounds come before work: the grid is range-checked (check_suite) and every configuration's buffers
are estimated against the device's memory before the first one is measured.
"""
from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

from bench.run.distributed import ProcessGroup, RankInfo, merge_rank_files, rank_file, shard
from bench.harness import measure
from bench.harness.environment import backend_version, environment, git_revision, write_env_file
from bench.spec.errors import UserError
from bench.results.io import write_json
from bench.spec.grid import Config, GridFlags, Suite
from bench.harness.registry import check_suite
from bench.harness.target import (Target, cuda_available, resolve_run_target,  # noqa: F401 - callers' names
                                  resolve_target)
from bench.harness.isolation import InProcess, IsolatedWorker, Outcome, WithSpare, Worker
from bench.results.io import RecordFile, make_out_dir, open_results, read_records, write_results_csv
from bench.harness.isolation import DEFAULT_CALL_TIMEOUT_S
from bench.run.lock import DirLock
from bench.harness.record_builder import build_records
from bench.results.records import Record
from bench.harness.registry import PlannedRun, registry, run_plan
from bench.run.runstate import (check_inputs, check_same_grid, load_run, recorded_configs, save_run, saved_argv,
                                supersede)
from bench.spec.distributions import absolute_spec
from bench.harness.workloads import batch_bytes, packed_batch, torch_dtype

ProgressHook = Callable[[Config, list[Record]], None]


def suite_from_flags(suite: Optional[str], **flags) -> tuple[Suite, bool]:
    """The suite file (default: `default`, or `smoke` on a machine without CUDA) with flags applied;
    and whether the smoke fallback was taken."""
    return suite_for_run(Path("."), suite, False, GridFlags.of(**flags))


@dataclass
class SweepResult:
    records: list[Record] = field(default_factory=list)
    skipped_configs: int = 0
    results_path: Optional[Path] = None
    csv_path: Optional[Path] = None          # results.csv: every record of results.jsonl, one flat row each


def measure_one_config(worker: Worker, config: Config, plan: list[PlannedRun], target: Target, suite: Suite,
                       rank: RankInfo, env: Optional[dict] = None) -> list[Record]:
    """Probe each implementation alone (so one crash cannot hide another's numbers), then measure
    the survivors interleaved: every backend's in the same rounds."""
    batch = packed_batch(config)                 # packed once, here; the worker gets it as data
    probes: dict[str, Outcome] = {}
    for p in plan:
        probes[p.label] = worker.call(measure.probe, config=config, batch=batch, name=p.name,
                                      backend=p.backend, device=target.device)
    alive = [p.label for p in plan if probes[p.label].ok and "skipped" not in probes[p.label].value]
    elsewhere = {p.label: (p.name, p.backend) for p in plan if (p.name, p.backend) != (p.label, target.backend)}
    measured = None
    if alive:
        measured = worker.call(measure.measure_config, config=config, batch=batch, names=alive,
                               backend=target.backend, device=target.device, timing=suite.run_timing(),
                               **({"runs_on": {n: elsewhere[n] for n in alive if n in elsewhere}}
                                  if elsewhere else {}))
    impls = [replace(registry()[p.name], name=p.label) for p in plan]
    versions = {b: v for b in dict.fromkeys(p.backend for p in plan) if (v := backend_version(env or {}, b))}
    return build_records(config, batch, impls, target.backend, target.device, rank.rank,
                         rank.local_rank if target.device == "cuda" else None, probes, measured,
                         backends={p.label: p.backend for p in plan}, versions=versions)


def write_env(worker: Worker, out_dir: Path, target: Target, suite: Suite, rank: RankInfo,
              backends: tuple[str, ...] = ()) -> dict:
    """The worker's environment (where the numbers are measured) plus the run's settings, to env.json;
    `backends`: every backend the run uses (its axis and the peers' kernels), each with its version."""
    also = tuple(b for b in dict.fromkeys(backends or target.backends) if b != target.backend)
    outcome = worker.call(environment, backend=target.backend, device=target.device,
                          **({"also": also} if also else {}))
    env = outcome.value if outcome.ok else {"environment_error": outcome.error}
    env.update(date_utc=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"), git_revision=git_revision(),
               seed=suite.seed, suite=suite.name, argv=sys.argv,
               timing=asdict(suite.timing), world_size=rank.world_size, cpu_reference=target.device == "cpu")
    write_env_file(out_dir, env, rank.rank)
    return env


def suite_for_run(out_dir: Path, suite: Optional[str], resume: bool, flags: GridFlags = GridFlags(),
                  columns: Optional[str] = None) -> tuple[Suite, bool]:
    """The grid a sweep measures, and whether the CPU fallback suite was chosen.

    With --resume and a saved grid in DIR, that grid (flags that would change it are refused);
    else the suite file (default: `default`, or `smoke` on a machine without CUDA) with the flags
    applied. `columns` (--columns A,B) names the length columns of every `file:` distribution.
    """
    from bench.spec.grid import load_suite
    from bench.run.runstate import resume_suite
    from bench.spec.distributions import parse_columns
    if columns is not None:
        parse_columns(columns)
        flags = replace(flags, distributions=tuple(d + f"?columns={columns}" if d.startswith("file:") else d
                                                   for d in flags.distributions))
    if flags.distributions:                     # run.json remembers where the inputs are, from any cwd
        flags = replace(flags, distributions=tuple(absolute_spec(d) if isinstance(d, str) else d
                                                   for d in flags.distributions))
    if resume and not Path(out_dir).is_dir():
        raise UserError(f"--resume: {out_dir} does not exist (nothing to resume; drop --resume to start a run there)")
    if resume:
        saved = resume_suite(Path(out_dir), suite, flags)
        if saved is not None:
            return saved, False
    fallback = suite is None and not cuda_available()
    base = load_suite(suite or ("smoke" if fallback else "default"))
    out = base.with_flags(flags)
    given = flags.distributions
    if given and all(d.startswith("batches:") for d in given) and not flags.tokens:
        out = replace(out, tokens=())           # each batch's own total, not the suite's budgets
    return out, fallback


def check_memory(configs: list[Config], memory: dict) -> None:
    """Refuse, before any work, a configuration whose estimated buffers exceed the device's memory."""
    free = memory.get("free")
    if not free:
        return
    for c in configs:
        need = batch_bytes(c.tokens, c.heads, c.head_dim, torch_dtype(c.dtype).itemsize)
        if need > free:
            raise UserError(f"{c.config_id}: its buffers need about {need / 2**30:.1f} GiB "
                            f"({BUFFER_NOTE}), more than the {memory.get('what', 'memory')} "
                            f"({free / 2**30:.1f} GiB); lower --tokens or --heads")


BUFFER_NOTE = "tokens x heads x head_dim x dtype bytes x 16 buffers"


def run_sweep(suite: Suite, out_dir: Path, target: Target, *, resume: bool = False, isolation: str = "process",
              rank: Optional[RankInfo] = None, on_config: Optional[ProgressHook] = None,
              on_start: Optional[Callable[[int], None]] = None, retry_failed: bool = False,
              call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S, allow_changed_inputs: bool = False,
              notify: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> SweepResult:
    """Measure the grid into out_dir/results.jsonl, holding the directory's lock throughout.

    A resume whose `file:`/`batches:` inputs changed since the run began is refused, naming them,
    unless `allow_changed_inputs` (then run.json is saved again with their new hashes)."""
    check_suite(suite)
    if not (call_timeout_s > 0 and call_timeout_s < float("inf")):
        raise UserError(f"--call-timeout {call_timeout_s}: must be a finite number of seconds > 0")
    rank = rank or RankInfo.from_env()
    out_dir = make_out_dir(out_dir)
    lock = DirLock(out_dir) if rank.rank == 0 else None
    if lock is not None:
        lock.acquire()
    try:
        return _run_locked(suite, out_dir, target, resume, isolation, rank, on_config, on_start,
                           retry_failed, call_timeout_s, allow_changed_inputs, notify)
    finally:
        if lock is not None:
            lock.release()


def _run_locked(suite: Suite, out_dir: Path, target: Target, resume: bool, isolation: str, rank: RankInfo,
                on_config: Optional[ProgressHook], on_start: Optional[Callable[[int], None]],
                retry_failed: bool, call_timeout_s: float, allow_changed_inputs: bool,
                notify: Callable[[str], None]) -> SweepResult:
    results = open_results(out_dir, "results.jsonl", resume)
    if rank.rank == 0:
        saved = load_run(out_dir) if resume else None
        if saved is not None:
            check_same_grid(out_dir, saved, suite)
            if check_inputs(out_dir, allow_changed_inputs, notify):
                save_run(out_dir, suite, saved_argv(out_dir))
        else:
            save_run(out_dir, suite)
    group = ProcessGroup(rank)
    sink = RecordFile(rank_file(out_dir, rank.rank) if rank.distributed else results)
    plan = run_plan(suite, target)
    names = [p.label for p in plan]
    configs = suite.configs()
    done: set[str] = set()
    if resume:
        records = read_records([results, sink.path], repair=True)
        done = recorded_configs(records, configs, names, retry_failed)
        if not rank.distributed:
            supersede(results, records, configs, done)    # partial or retried configurations rerun whole
    done |= group.broadcast(done)           # rank 0's merged file may live on another node
    mine = shard(configs, Config.cost, rank.rank, rank.world_size)
    todo = [c for c in mine if c.config_id not in done]
    result = SweepResult(skipped_configs=len(mine) - len(todo), results_path=results,
                         csv_path=results.with_name("results.csv"))
    env = {}
    if target.device == "cuda" and rank.distributed and "CUDA_VISIBLE_DEVICES" not in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = str(rank.local_rank)
    # on a GPU a crash's replacement is already warm (a CUDA cold start is seconds); on the CPU a spare
    # would only double the imports
    worker: Worker = (InProcess() if isolation != "process"
                      else WithSpare(env=env, call_timeout_s=call_timeout_s, device=target.device)
                      if target.device == "cuda" else IsolatedWorker(env=env, call_timeout_s=call_timeout_s))
    try:
        if target.device == "cpu":
            check_memory(todo, measure.device_memory("cpu"))
        else:
            memory = worker.call(measure.device_memory, device=target.device)
            if memory.ok:
                check_memory(todo, memory.value)
        env_now = write_env(worker, out_dir, target, suite, rank, tuple(p.backend for p in plan))
        spun = worker.call(measure.spin_up, device=target.device)
        if spun.ok and rank.rank == 0 and target.device == "cuda":
            write_json(out_dir / "clocks_after_spin_up.json", spun.value)
        if on_start:
            on_start(len(todo))
        for config in todo:
            records = measure_one_config(worker, config, plan, target, suite, rank, env_now)
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
