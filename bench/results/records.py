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
from typing import Any, Iterable, Optional

from bench.spec.errors import UserError
from bench.spec.grid import Config
from bench.harness.implementations import Implementation
from bench.results.io import SCHEMA, read_record_file, results_path
from bench.harness.isolation import Outcome
from bench.results.stats import Stat, median, median_ci, paired_deltas
from bench.harness.workloads import PackedBatch, batch_summary, torch_dtype
from prefixlm_attn.variants import LengthsSummary

FLOPS_PER_PAIR_FWD = 4          # QK^T and PV: 2 multiply-adds per head-dim element
FLOPS_PER_PAIR_BWD = 10         # dV, dP, dS->dQ, dK, plus the recomputed QK^T (FA convention: 2.5x fwd)
STATUSES = ("ok", "oom", "crashed", "timeout", "error", "skipped")
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
    kind: str = "variant"                          # variant | peer
    heads: Optional[int] = None
    head_dim: Optional[int] = None
    dtype: Optional[str] = None
    seed: Optional[int] = None
    context: Optional[int] = None
    backend: Optional[str] = None
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
_WHEN_PRESENT = ("converged", "timing_mode", "timing_note", "gpu_method", "host_overhead_ms", "samples_ms", "setup_ms", "notes",
                 "bandwidth", "gpu_clocks", "watched_deltas", "ideal")


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


def build_records(config: Config, batch: PackedBatch, impls: list[Implementation], backend: str, device: str,
                  rank: int, gpu_index: Optional[int], probes: dict[str, Outcome],
                  measured: Optional[Outcome]) -> list[Record]:
    """Every record of one configuration, from the worker's outcomes: the one place records are made.

    `probes` holds each implementation's probe outcome; `measured` the interleaved measurement of
    those whose probe succeeded (None when none did). A probe that refused the workload
    (`{"skipped": reason}`) gives status `skipped`.
    """
    summary = batch_summary(batch)
    lengths = LengthsSummary.of(batch.prefix_lens, batch.causal_lens, config.tokens, config.heads,
                                config.head_dim, torch_dtype(config.dtype))
    records: dict[str, Record] = {}
    for impl in impls:
        rec = Record(config_id=config.config_id, variant=impl.name, kind=impl.kind, distribution=config.distribution,
                     tokens=config.tokens, heads=config.heads, head_dim=config.head_dim, dtype=config.dtype,
                     seed=config.seed, context=config.context, backend=backend, device=device, status="",
                     batch=dict(summary), rank=rank, gpu_index=gpu_index,
                     bytes=impl.byte_model(lengths).as_dict() if impl.byte_model is not None else None)
        probe = probes[impl.name]
        if not probe.ok:
            rec.status, rec.error = probe.status, probe.error
        elif "skipped" in probe.value:
            rec.status, rec.error = "skipped", probe.value["skipped"]
        elif measured is not None and not measured.ok:
            rec.status, rec.error = measured.status, measured.error
        records[impl.name] = rec
    if measured is not None and measured.ok:
        timed = {n: records[n] for n in measured.value["samples_ms"]}
        _fill_measurements(timed, measured.value, {n: probes[n].value for n in timed})
        fill_ideal(list(records.values()))
    return [records[impl.name] for impl in impls]


IDEAL_PEER = "fa3_bidir_bound"     # FA3's bidirectional single pass: the rate no PrefixLM variant can beat by much


def fill_ideal(records: list[Record]) -> None:
    """`ideal` of each ok variant record: its fwd, bwd and fwd+bwd time over the ideal time, where the ideal
    is the batch's PrefixLM pairs at the per-pair rate (ms / computed pair) of FA3's bidirectional single
    pass measured in the same configuration. Needs that peer ok with its computed pairs in `notes`."""
    bound = next((r for r in records if r.variant == IDEAL_PEER and r.ok), None)
    own_pairs = (bound.notes or {}).get("attended_pairs") if bound is not None else None
    if not own_pairs:
        return
    rate = {m: bound.median(m) / own_pairs for m in ("forward", "backward")}
    for rec in records:
        pairs = (rec.batch or {}).get("attended_pairs")
        if rec.kind != "variant" or not rec.ok or not pairs:
            continue
        ideal_fwd, ideal_bwd = pairs * rate["forward"], pairs * rate["backward"]
        fwd, bwd = rec.median("forward"), rec.median("backward")
        rec.ideal = {"fwd": fwd / ideal_fwd, "bwd": bwd / ideal_bwd, "fwd_bwd": (fwd + bwd) / (ideal_fwd + ideal_bwd),
                     "ideal_fwd_ms": ideal_fwd, "ideal_bwd_ms": ideal_bwd, "peer": IDEAL_PEER}


def _fill_measurements(records: dict[str, Record], result: dict[str, Any], probes: dict[str, dict]) -> None:
    """Timings, paired differences, bandwidth prediction and TFLOP/s into each measured record.

    Everything paired (extra_vs_best, the prediction) and the headline forward/backward use the
    mode's samples (`samples_ms`); the other clocks of the same rounds add their own stats, host
    overhead (eager - gpu, paired by round) and their raw samples (`eager_forward`, ...)."""
    samples, phases = result["samples_ms"], result["phase_samples_ms"]
    timing = result.get("timing") or {"mode": "eager", "series": ["eager"], "note": None, "notes": {}}
    by_clock = result.get("clock_samples_ms") or {timing["mode"]: samples}
    bw = result["bandwidth"]
    variants = [n for n in samples if records[n].kind == "variant"]
    best = min(variants, key=lambda n: median(samples[n]["backward"])) if variants else None
    for name, s in samples.items():
        rec = records[name]
        phase_names = sorted({p for rep in phases[name] for p in rep})
        rec.timings_ms = Timings(median_ci(s["forward"]), median_ci(s["backward"]),
                                 {p: median_ci([rep.get(p, 0.0) for rep in phases[name]]) for p in phase_names}
                                 if phases[name] else {})
        if best is not None and rec.kind == "variant":
            rec.timings_ms.extra_vs_best = paired_difference(s["backward"], samples[best]["backward"])
            rec.prediction = _prediction(rec, records[best], bw, best, rec.timings_ms.extra_vs_best)
        _fill_clocks(rec, timing, by_clock)
        rec.status, rec.samples_ms = "ok", _samples_of(name, timing["mode"], by_clock, s)
        rec.stop_reason, rec.repetitions = result["stop_reason"], result["rounds"]
        rec.converged = result.get("converged")
        pairs = rec.batch["attended_pairs"] * rec.heads * rec.head_dim
        if rec.kind != "block":     # a block's time is mostly matmuls: attention FLOP/s of it would mislead
            rec.tflops = {"forward": FLOPS_PER_PAIR_FWD * pairs / (rec.timings_ms.forward.median * 1e9),
                          "backward": FLOPS_PER_PAIR_BWD * pairs / (rec.timings_ms.backward.median * 1e9)}
        probe = probes.get(name, {})
        if rec.bytes is not None or probe.get("peak_memory") is not None:
            rec.bytes = {**(rec.bytes or {}), "peak_memory": probe.get("peak_memory")}
        if probe.get("setup_ms") is not None:
            rec.setup_ms = probe["setup_ms"]
        if probe.get("notes"):
            rec.notes = probe["notes"]
        rec.bandwidth = bw
        mine = {k: v for k, v in (result.get("watched_deltas") or {}).items() if name in k.split("-")}
        rec.watched_deltas = mine or None
        rec.gpu_clocks, rec.gpu_clocks_recorded = result.get("gpu_clocks"), True


def _with_fwd_bwd(series: dict[str, list[float]]) -> dict[str, list[float]]:
    return {**series, "fwd_bwd": [f + b for f, b in zip(series["forward"], series["backward"])]}


def _fill_clocks(rec: Record, timing: dict[str, Any], by_clock: dict[str, dict]) -> None:
    """Per-clock stats, host overhead, the graph figure and the mode's notes of one record."""
    name, notes = rec.variant, timing.get("notes") or {}
    for clock in timing["series"]:
        series = by_clock.get(clock, {}).get(name)
        if series is None:
            rec.timings_ms.clock_errors[clock] = notes.get(clock, {}).get(name) or "not measured"
        else:
            rec.timings_ms.clocks[clock] = {d: median_ci(v) for d, v in _with_fwd_bwd(series).items()}
    if "graph" in rec.timings_ms.clocks:
        rec.timings_ms.graph_fwd_bwd = rec.timings_ms.clocks["graph"]["fwd_bwd"]
    elif "graph" in rec.timings_ms.clock_errors:
        rec.timings_ms.graph_error = rec.timings_ms.clock_errors["graph"]
    gpu, eager = by_clock.get("gpu", {}).get(name), by_clock.get("eager", {}).get(name)
    if gpu is not None and eager is not None:
        g, e = _with_fwd_bwd(gpu), _with_fwd_bwd(eager)
        rec.host_overhead_ms = {d: paired_difference(e[d], g[d]) for d in ("forward", "backward", "fwd_bwd")}
    fallback = notes.get("gpu", {}).get(name)
    rec.timing_mode = timing["mode"]
    rec.timing_note = "; ".join(n for n in (timing.get("note"), fallback) if n) or None
    if "gpu" in timing["series"]:
        rec.gpu_method = "amortized" if fallback else "held"


def _samples_of(name: str, mode: str, by_clock: dict[str, dict], mode_samples: dict[str, list[float]]
                ) -> dict[str, list[float]]:
    """`forward`/`backward`: the mode's per-round samples; `<clock>_forward`/`_backward` the other clocks'."""
    out = {"forward": mode_samples["forward"], "backward": mode_samples["backward"]}
    for clock in CLOCKS:
        series = by_clock.get(clock, {}).get(name)
        if clock != mode and series is not None:
            out[f"{clock}_forward"], out[f"{clock}_backward"] = series["forward"], series["backward"]
    return out


def paired_difference(a: list[float], b: list[float]) -> Stat:
    """Median and interval of a - b over pairs of rounds (`bench.results.stats.paired_deltas`): the same
    interleaved rounds measured both, so drift cancels, and each pair of rounds ran them in both orders."""
    return median_ci(paired_deltas(a, b))


def predicted_extra_ms(rec: "Record | dict", base: "Record | dict", bw: dict) -> tuple[float, list[float]]:
    """Extra ms of `rec` over `base` from their byte differences, in units of one K/V-sized fill (or
    add) at the bandwidth probe's time; the interval comes from the probe's 95% intervals."""
    b, b0 = _bytes_of(rec), _bytes_of(base)
    d_fill, d_add = b["zero_filled"] - b0["zero_filled"], b["added"] - b0["added"]
    f, a = bw["fill_ms"], bw["add_ms"]

    def at(key: str) -> float:
        return (d_fill * f[key] + d_add / 3 * a[key]) / bw["kv_bytes"]

    return at("median"), sorted((at("lo"), at("hi")))


def _bytes_of(rec: "Record | dict") -> dict:
    return rec.bytes if isinstance(rec, Record) else rec["bytes"]


def _prediction(rec: "Record", best_rec: "Record", bw: dict, best: str, measured: Stat) -> dict:
    predicted, interval = predicted_extra_ms(rec, best_rec, bw)
    return {"best_variant": best, "extra_ms_vs_best_predicted": predicted,
            "extra_ms_vs_best_predicted_interval": interval,
            "extra_ms_vs_best_measured": measured.median,
            "extra_ms_vs_best_interval": [measured.lo, measured.hi],
            "fill_gbps": bw["fill_gbps"], "add_gbps": bw["add_gbps"]}


def done_keys(records: Iterable[dict]) -> set[tuple[str, str]]:
    """(config_id, implementation) pairs already recorded, whatever their status."""
    return {(r["config_id"], r["variant"]) for r in records if r.get("status")}
