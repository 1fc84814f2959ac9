"""Records: one typed `Record` per configuration x implementation, appended and flushed as each finishes.

The sweep writes records through `build_records` only; the report and compare read them back through
`Record.from_json` (docs/records.md specifies the format). Statistics are computed here from the
worker's raw samples, once; reports never recompute timing. The prediction compares each variant's
measured extra backward time over the best variant (the median of per-round paired differences, so
shared drift cancels) with what its byte counts predict at the fill/add bandwidth measured in the
same run.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from bench.spec.errors import UserError
from bench.spec.grid import Config
from bench.results.io import SCHEMA, read_record_file, results_path
from bench.results.stats import Stat

FAILED = ("oom", "crashed", "timeout", "error")        # what --retry-failed measures again
REQUIRED_KEYS = ("config_id", "variant", "status", "distribution", "tokens")


CLOCKS = ("gpu", "eager", "graph")            # per-clock blocks of timings_ms (docs/CLOCKS.md)


@dataclass
class Timings:
    """`timings_ms`: medians with 95% intervals, in milliseconds.

    `forward`/`backward` are the timing mode's clock (gpu by default on CUDA, eager on the CPU);
    `clocks` holds every clock measured in the same rounds, per direction (forward, backward,
    fwd_bwd), and `clock_errors` why a clock could not time this implementation."""
    forward: Optional[Stat] = None                 # None only in hand-made files that lack it
    backward: Optional[Stat] = None
    phases: dict[str, Stat] = field(default_factory=dict)
    extra_vs_best: Optional[Stat] = None           # variants only: paired backward difference to the best
    graph_fwd_bwd: Optional[Stat] = None           # --cuda-graph: one forward + backward replayed
    graph_error: Optional[str] = None              # --cuda-graph: why the capture failed
    clocks: dict[str, dict[str, Stat]] = field(default_factory=dict)   # gpu | eager | graph -> direction -> Stat
    clock_errors: dict[str, str] = field(default_factory=dict)         # clock -> why it has no numbers

    def stat(self, metric: str) -> Optional[Stat]:
        """forward/backward/extra_vs_best/graph_fwd_bwd, a clock's `gpu.forward` / `eager.fwd_bwd`, or a
        phase `bwd.*` / `fwd.*`."""
        if "." in metric:
            clock, _, direction = metric.partition(".")
            if clock in CLOCKS:
                return self.clocks.get(clock, {}).get(direction)
            return self.phases.get(metric)
        return getattr(self, metric, None) if metric in _STAT_FIELDS else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k).as_dict() for k in ("forward", "backward")
                               if getattr(self, k) is not None}
        out["phases"] = {k: v.as_dict() for k, v in self.phases.items()}
        if self.extra_vs_best is not None:
            out["extra_vs_best"] = self.extra_vs_best.as_dict()
        if self.graph_fwd_bwd is not None:
            out["graph_fwd_bwd"] = self.graph_fwd_bwd.as_dict()
        elif self.graph_error is not None:
            out["graph_fwd_bwd"] = {"error": self.graph_error}
        for clock in CLOCKS:
            if clock in self.clocks:
                out[clock] = {d: st.as_dict() for d, st in self.clocks[clock].items()}
            elif clock in self.clock_errors:
                out[clock] = {"error": self.clock_errors[clock]}
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "Timings":
        graph = obj.get("graph_fwd_bwd")
        blocks = {c: obj[c] for c in CLOCKS if isinstance(obj.get(c), dict)}
        return cls(Stat.from_json(obj["forward"]) if obj.get("forward") else None,
                   Stat.from_json(obj["backward"]) if obj.get("backward") else None,
                   {k: Stat.from_json(v) for k, v in (obj.get("phases") or {}).items()},
                   Stat.from_json(obj["extra_vs_best"]) if obj.get("extra_vs_best") else None,
                   Stat.from_json(graph) if graph and "error" not in graph else None,
                   graph.get("error") if graph and "error" in graph else None,
                   {c: {d: Stat.from_json(v) for d, v in b.items()} for c, b in blocks.items() if "error" not in b},
                   {c: str(b["error"]) for c, b in blocks.items() if "error" in b})


_STAT_FIELDS = ("forward", "backward", "extra_vs_best", "graph_fwd_bwd")


@dataclass
class Record:
    """One configuration x implementation (docs/records.md). Field order is the order on disk."""
    config_id: str
    variant: str                                   # the implementation's name (a variant or a peer)
    distribution: str
    tokens: int
    status: str                                    # ok | oom | crashed | timeout | error | skipped
    kind: str = "variant"                          # variant | peer | block
    description: Optional[str] = None              # the implementation's one line (printers need no registry)
    heads: Optional[int] = None
    head_dim: Optional[int] = None
    dtype: Optional[str] = None
    seed: Optional[int] = None
    context: Optional[int] = None
    backend: Optional[str] = None
    backend_version: Optional[dict[str, str]] = None   # the backend's package and version (version_info)
    device: Optional[str] = None
    error: Optional[str] = None                    # traceback tail; for skipped, the refusal's reason
    batch: Optional[dict[str, int]] = None
    timings_ms: Optional[Timings] = None
    stop_reason: Optional[str] = None
    repetitions: int = 0
    converged: Optional[bool] = None               # ok only: every median's interval reached the target
    bytes: Optional[dict[str, Any]] = None
    prediction: Optional[dict[str, Any]] = None
    tflops: Optional[dict[str, float]] = None
    rank: Optional[int] = None
    gpu_index: Optional[int] = None
    samples_ms: Optional[dict[str, list[float]]] = None     # ok only: raw per-round samples (mode; eager_*, graph_*)
    setup_ms: Optional[float] = None               # when the implementation has a one-off setup
    notes: Optional[dict[str, Any]] = None         # peers: correctness check, computed pairs, ...
    bandwidth: Optional[dict[str, Any]] = None     # ok only: the fill/add probe of the configuration
    gpu_clocks: Optional[dict[str, Any]] = None    # ok only (null on the CPU): nvidia-smi after timing
    watched_deltas: Optional[dict[str, Any]] = None    # "a-b" -> converged, rel_ci: the stopping rule's pairs
    ideal: Optional[dict[str, Any]] = None         # variants: fwd/bwd/fwd_bwd time over the ideal (fill_ideal)
    gpu_clocks_recorded: bool = field(default=False, repr=False)   # older files lack the key: keep it so
    timing_mode: Optional[str] = None              # ok only: gpu | eager, the clock of forward/backward
    timing_note: Optional[str] = None              # why the clocks differ from the request (refusal, fallback)
    gpu_method: Optional[str] = None               # gpu clock ran: held | amortized (the call synchronizes)
    host_overhead_ms: Optional[dict[str, Stat]] = None   # gpu and eager ran: eager - gpu, paired by round
    schema: int = SCHEMA
    extra: dict[str, Any] = field(default_factory=dict)    # keys this version does not know, kept

    @property
    def ok(self) -> bool:
        """A record with usable timings."""
        return self.status == "ok" and self.timings_ms is not None

    @property
    def config(self) -> Config:
        return Config(self.distribution, self.tokens, self.heads, self.head_dim, self.dtype, self.seed, self.context)

    def stat(self, metric: str) -> Optional[Stat]:
        return self.timings_ms.stat(metric) if self.timings_ms is not None else None

    def median(self, metric: str) -> Optional[float]:
        s = self.stat(metric)
        return None if s is None else s.median

    def to_json(self) -> dict[str, Any]:
        """The JSON object on disk: always-present keys first, then the ones present when measured."""
        out: dict[str, Any] = {"schema": self.schema}
        for name in _ALWAYS:
            value = getattr(self, name)
            out[name] = value.to_json() if isinstance(value, Timings) else value
        for name in _WHEN_PRESENT:
            value = getattr(self, name)
            if name == "host_overhead_ms" and value is not None:
                value = {d: st.as_dict() for d, st in value.items()}
            if (value is not None or (name == "gpu_clocks" and self.gpu_clocks_recorded)
                    or (name == "timing_note" and self.timing_mode is not None)):
                out[name] = value
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, obj: dict[str, Any], where: str = "record") -> "Record":
        """A record read back; missing optional keys become None, unknown keys land in `extra`."""
        missing = [k for k in REQUIRED_KEYS if k not in obj]
        if missing:
            raise UserError(f"{where} lacks {', '.join(missing)}")
        if obj.get("schema", SCHEMA) != SCHEMA:
            raise UserError(f"{where} has schema {obj.get('schema')}, this version reads schema {SCHEMA}")
        timings = obj.get("timings_ms")
        if obj["status"] == "ok" and not isinstance(timings, dict):
            raise UserError(f"{where} ({obj['config_id']}/{obj['variant']}) is ok but has no timings_ms")
        known = {f.name for f in fields(cls)} - {"extra", "timings_ms", "gpu_clocks_recorded", "host_overhead_ms"}
        overhead = obj.get("host_overhead_ms")
        try:
            return cls(**{k: v for k, v in obj.items() if k in known},
                       timings_ms=Timings.from_json(timings) if isinstance(timings, dict) else None,
                       host_overhead_ms={d: Stat.from_json(v) for d, v in overhead.items()}
                       if isinstance(overhead, dict) else None,
                       gpu_clocks_recorded="gpu_clocks" in obj,
                       extra={k: v for k, v in obj.items()
                              if k not in known and k not in ("timings_ms", "host_overhead_ms")})
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{where}: malformed timings_ms ({exc})") from None


_ALWAYS = ("config_id", "variant", "kind", "distribution", "tokens", "heads", "head_dim", "dtype", "seed",
           "context", "backend", "device", "status", "error", "batch", "timings_ms", "stop_reason",
           "repetitions", "bytes", "prediction", "tflops", "rank", "gpu_index")
_WHEN_PRESENT = ("description", "backend_version", "converged", "timing_mode", "timing_note", "gpu_method", "host_overhead_ms", "samples_ms", "setup_ms", "notes",
                 "bandwidth", "gpu_clocks", "watched_deltas", "ideal")


# The four parts of a record (one schema version for all; on disk a record stays one flat object, so older
# files read unchanged): what was asked (spec), what was measured (samples), what follows from the
# measurements by pure functions (derived, bench.results.derived), and where it ran (environment).
PARTS: dict[str, tuple[str, ...]] = {
    "spec": ("schema", "config_id", "variant", "kind", "description", "distribution", "tokens", "heads", "head_dim",
             "dtype", "seed", "context", "batch"),
    "samples": ("status", "error", "timings_ms", "stop_reason", "repetitions", "converged", "timing_mode",
                "timing_note", "gpu_method", "samples_ms", "setup_ms", "notes", "bandwidth", "watched_deltas"),
    "derived": ("bytes", "prediction", "tflops", "host_overhead_ms", "ideal"),
    "environment": ("backend", "backend_version", "device", "rank", "gpu_index", "gpu_clocks"),
}


def record_part(obj: dict[str, Any], part: str) -> dict[str, Any]:
    """One part of a record's JSON object (`PARTS`): the keys of that part it holds."""
    return {k: obj[k] for k in PARTS[part] if k in obj}


def load_records(path: str | Path) -> list[Record]:
    """Records of one results.jsonl (or directory), checked: the report reads files it did not write.

    A line that is not a JSON object is skipped with a warning (the file is never changed: only a
    resuming sweep repairs it); an object that is not a valid record is an error.
    """
    p = results_path(path)
    objs = read_record_file(p)
    records = [Record.from_json(obj, f"{p}: record {i}") for i, obj in enumerate(objs, start=1)]
    if not records:
        raise UserError(f"{p}: no records")
    return records
