"""The sweep grid: named axes, their cartesian product, and suite files that declare them.

A configuration is one packed workload (distribution x tokens x heads x head_dim x dtype); the
implementations (the op's variants, and peers) of one configuration are measured interleaved, so
they are a list inside the configuration rather than an axis of the product.
"""
from __future__ import annotations

import itertools
import math
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Optional

from bench.spec.distributions import (MAX_TOKENS, MIN_SEQ, distribution_key, expand_distribution, get_distribution,
                                      longest_sequence)
from bench.spec.errors import UserError
from bench.spec.names import BLOCK_PREFIX, on_backend
from bench.spec.packing import pack

TIMING_MODES = ("gpu", "eager")      # gpu: stream held, GPU work only; eager: from an idle queue (docs/CLOCKS.md)

SUITES_DIR = Path(__file__).resolve().parent.parent / "suites"   # bench/suites: data beside the floors
DTYPES = ("bfloat16", "float16", "float32")
MAX_HEADS = 1024          # range checks: past these a flag is a typo, not a workload
MAX_HEAD_DIM = 1024
MAX_REPS = 1_000_000


@dataclass(frozen=True)
class TimingOptions:
    """Stopping rule and measurement mode (nvbench-style: min samples, noise target, timeout)."""
    warmup: int = 3
    min_reps: int = 10
    max_reps: int = 300
    target_rel_ci: float = 0.01      # half-width of the median's 95% interval over the median
    time_cap_s: float = 10.0         # per configuration, all implementations together
    phase_reps: int = 10             # extra interleaved repetitions with phase events
    l2_flush: bool = False
    cuda_graph: bool = False
    mode: str = "gpu"                # gpu (stream held: GPU work only) | eager (idle queue); CPU: always eager
    # paired deltas (a, b) the rule also waits for: a - b per round, until its 95% CI is within +-watch_rel_ci
    watch_pairs: tuple = ()
    watch_rel_ci: float = 0.05
    time_cap_long_s: float = 0.0     # > 0: the time cap for configurations of >= long_tokens tokens
    long_tokens: int = 65536

    def cap_for(self, tokens: int) -> float:
        """The time cap of a configuration: longer for long sequences when `time_cap_long_s` is set."""
        return self.time_cap_long_s if self.time_cap_long_s > 0 and tokens >= self.long_tokens else self.time_cap_s


@dataclass(frozen=True)
class Config:
    distribution: str
    tokens: int
    heads: int
    head_dim: int
    dtype: str
    seed: int = 0
    context: int = 8192

    @property
    def label(self) -> str:
        """The workload's shape, for tables (the id without context and seed); a user file appears as
        its content hash (`file@HASH`, `batches@HASH#N`), so the id follows the data, not the path."""
        return f"{distribution_key(self.distribution)}/t{self.tokens}/h{self.heads}/d{self.head_dim}/{self.dtype}"

    @property
    def config_id(self) -> str:
        return f"{self.label}/ctx{self.context}/s{self.seed}"

    def cost(self) -> float:
        """Relative run time, for balancing shards across ranks (attention is ~ tokens x context)."""
        return self.tokens * min(self.tokens, self.context) * self.heads * self.head_dim

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Planned:
    """One implementation of a run: its record name, the registry's name, and the backend axis value it
    runs on (None for a peer: a peer's own kernel decides, bench.harness.registry.run_plan)."""
    label: str
    name: str
    backend: Optional[str]


@dataclass(frozen=True)
class Suite:
    name: str
    description: str = ""
    variants: tuple[str, ...] = ()
    peers: tuple[str, ...] = ()
    distributions: tuple[str, ...] = ()
    tokens: tuple[int, ...] = ()
    heads: tuple[int, ...] = (16,)
    head_dims: tuple[int, ...] = (128,)
    dtypes: tuple[str, ...] = ("bfloat16",)
    seed: int = 0
    context: int = 8192
    backends: tuple[str, ...] = ("auto",)   # the backend axis: each one's variants run in the same rounds
    device: str = "auto"
    block: bool = False            # also time each variant inside a transformer block (`block:<variant>`)
    timing: TimingOptions = field(default_factory=TimingOptions)

    @property
    def backend(self) -> str:
        """The run's first backend: the one a one-backend command (profile, validate) uses."""
        return self.backends[0] if self.backends else "auto"

    def planned(self) -> list["Planned"]:
        """What each configuration measures, interleaved: every backend's variants, the peers (once), then
        every backend's blocks. On a backend after the first a name carries it (`zeros_always [fa4]`)."""
        def on_each(names: list[str]) -> list[Planned]:
            return [Planned(on_backend(n, b) if i else n, n, b) for i, b in enumerate(self.backends) for n in names]
        blocks = [f"{BLOCK_PREFIX}{v}" for v in self.variants] if self.block else []
        return on_each(list(self.variants)) + [Planned(p, p, None) for p in self.peers] + on_each(blocks)

    def implementations(self) -> list[str]:
        """The planned implementations' names (the records' `variant`), in round order."""
        return [p.label for p in self.planned()]

    def run_timing(self) -> TimingOptions:
        """The timing options with each watched pair watched on every backend of the axis."""
        later = self.backends[1:]
        if not later or not self.timing.watch_pairs:
            return self.timing
        pairs = list(self.timing.watch_pairs)
        pairs += [(on_backend(a, b), on_backend(c, b)) for b in later for a, c in self.timing.watch_pairs
                  if a in self.variants and c in self.variants]
        return replace(self.timing, watch_pairs=tuple(pairs))

    def configs(self) -> list[Config]:
        """The grid; a `batches:PATH` axis value gives one configuration per batch line, at the batch's
        own token total unless the grid has a tokens axis."""
        out = []
        for d in self.distributions:
            for spec, own in expand_distribution(d):
                tokens = self.tokens or ((own,) if own else ())
                out += [Config(spec, t, h, hd, dt, self.seed, self.context) for t, h, hd, dt in
                        itertools.product(tokens, self.heads, self.head_dims, self.dtypes)]
        return out

    def with_flags(self, flags: "GridFlags") -> "Suite":
        """Flags given on the command line replace the suite's values (None or empty = not given)."""
        timing = {f.name: getattr(flags.timing, f.name) for f in fields(TimingFlags)
                  if getattr(flags.timing, f.name) is not None}
        rest = {f.name: (tuple(v) if isinstance(v, list) else v) for f in fields(GridFlags) if f.name != "timing"
                for v in [getattr(flags, f.name)] if v is not None and v != [] and v != ()}
        return replace(self, timing=replace(self.timing, **timing), **rest)

    def with_overrides(self, **overrides: Any) -> "Suite":
        """`with_flags` by keyword, for tests and scripts (timing option names set the timing flags)."""
        return self.with_flags(GridFlags.of(**overrides))


@dataclass(frozen=True)
class TimingFlags:
    """Timing options given on a command line; None = not given (the suite's value stands)."""
    warmup: Optional[int] = None
    min_reps: Optional[int] = None
    max_reps: Optional[int] = None
    target_rel_ci: Optional[float] = None
    time_cap_s: Optional[float] = None
    phase_reps: Optional[int] = None
    l2_flush: Optional[bool] = None
    cuda_graph: Optional[bool] = None
    mode: Optional[str] = None
    watch_pairs: Optional[tuple] = None
    watch_rel_ci: Optional[float] = None
    time_cap_long_s: Optional[float] = None
    long_tokens: Optional[int] = None


@dataclass(frozen=True)
class GridFlags:
    """The grid's axes and settings given on a command line; empty or None = the suite's own."""
    variants: tuple = ()
    peers: tuple = ()
    distributions: tuple = ()
    tokens: tuple = ()
    heads: tuple = ()
    head_dims: tuple = ()
    dtypes: tuple = ()
    seed: Optional[int] = None
    context: Optional[int] = None
    backends: tuple = ()
    device: Optional[str] = None
    block: Optional[bool] = None
    name: Optional[str] = None
    description: Optional[str] = None
    timing: TimingFlags = field(default_factory=TimingFlags)

    @classmethod
    def of(cls, **flags: Any) -> "GridFlags":
        """Keyword form: a TimingOptions name sets the timing flag of that name; an unknown name is a TypeError."""
        timing_keys = {f.name for f in fields(TimingFlags)}
        timing = TimingFlags(**{k: v for k, v in flags.items() if k in timing_keys})
        if "backend" in flags:                     # one backend by keyword: the axis of one value
            one = flags.pop("backend")
            flags.setdefault("backends", () if one is None else (one,) if isinstance(one, str) else tuple(one))
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in flags.items() if k not in timing_keys},
                   timing=timing)


_AXIS_KEYS = {"variant": "variants", "peer": "peers", "distribution": "distributions", "tokens": "tokens",
              "heads": "heads", "head_dim": "head_dims", "dtype": "dtypes"}


def suite_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return path
    return SUITES_DIR / f"{name_or_path}.toml"


def available_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def load_suite(name_or_path: str) -> Suite:
    path = suite_path(name_or_path)
    if not path.is_file():
        raise UserError(f"suite {name_or_path!r} not found (built-in: {', '.join(available_suites())})")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"suite {path}: invalid TOML ({exc})") from None
    for table in ("axes", "run", "timing"):
        if not isinstance(data.get(table, {}), dict):
            raise UserError(f"suite {path}: [{table}] must be a table")
    axes = data.get("axes", {})
    unknown = set(axes) - set(_AXIS_KEYS)
    if unknown:
        raise UserError(f"suite {path}: unknown axis {sorted(unknown)[0]!r} (axes: {', '.join(_AXIS_KEYS)})")
    kwargs: dict[str, Any] = {_AXIS_KEYS[k]: tuple(v if isinstance(v, list) else [v]) for k, v in axes.items()}
    if "distributions" in kwargs:
        kwargs["distributions"] = tuple(_beside(path, d) for d in kwargs["distributions"])
    run = data.get("run", {})
    for key in ("seed", "context", "device", "block"):
        if key in run:
            kwargs[key] = run[key]
    if "backend" in run:                        # one name, or a list: the backend axis
        kwargs["backends"] = tuple(run["backend"]) if isinstance(run["backend"], list) else (run["backend"],)
    try:
        table = dict(data.get("timing", {}))
        if "watch_pairs" in table:
            table["watch_pairs"] = _pairs(table["watch_pairs"], path)
        timing = TimingOptions(**table)
    except TypeError as exc:
        raise UserError(f"suite {path}: bad [timing] table ({exc})") from None
    return Suite(name=path.stem, description=data.get("description", ""), timing=timing, **kwargs)


def _beside(suite_file: Path, spec: Any) -> Any:
    """A suite's `file:`/`batches:` path is relative to the suite file (a suite ships its data beside it)."""
    for prefix in ("file:", "batches:"):
        if isinstance(spec, str) and spec.startswith(prefix):
            rel = Path(spec.removeprefix(prefix))
            if not rel.is_absolute() and (suite_file.parent / rel).is_file():
                return prefix + str(suite_file.parent.resolve() / rel)
    return spec


def _pairs(value: Any, path: Path) -> tuple:
    """watch_pairs = [["a", "b"], ...] -> (("a", "b"), ...)."""
    if not isinstance(value, list) or not all(isinstance(p, list) and len(p) == 2 and all(isinstance(n, str)
                                                                                         for n in p) for p in value):
        raise UserError(f"suite {path}: watch_pairs must be a list of [name, name] pairs")
    return tuple(tuple(p) for p in value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


NamesCheck = Callable[[tuple[str, ...], tuple[str, ...]], None]


def check_backends(backends: tuple) -> None:
    """The backend axis: at least one name, none twice, and `auto` only alone (it picks one backend; an
    axis names each). The names themselves are checked where backends resolve (bench.harness.target)."""
    if not backends:
        raise UserError("empty backend axis: give at least one --backend")
    for b in backends:
        if not isinstance(b, str) or not b:
            raise UserError(f"--backend {b!r}: must be a name")
    twice = next((b for i, b in enumerate(backends) if b in backends[:i]), None)
    if twice is not None:
        raise UserError(f"--backend {twice}: named twice")
    if len(backends) > 1 and "auto" in backends:
        raise UserError("--backend auto picks one backend: name each backend of a backend axis "
                        f"(given: {', '.join(backends)})")


def check_suite(suite: Suite, check_names: Optional[NamesCheck] = None) -> None:
    """Reject an unusable grid with one line, before any worker starts (flags and suite files alike).

    `check_names(variants, peers)` refuses unknown implementation names; the harness passes its
    registry's (`bench.harness.registry.check_suite`), since this floor knows no implementation."""
    if not suite.distributions or (not suite.tokens and not all(d.startswith("batches:") for d in suite.distributions)):
        raise UserError("empty grid: give at least one --distribution and one --tokens (or a --suite)")
    if not suite.variants and not suite.peers:
        raise UserError("empty grid: no variant and no peer to measure")
    for name, values in (("variant", suite.variants), ("peer", suite.peers), ("distribution", suite.distributions),
                         ("dtype", suite.dtypes)):
        for v in values:
            if not isinstance(v, str):
                raise UserError(f"--{name} {v!r}: must be a name")
    if check_names is not None:
        check_names(suite.variants, suite.peers)
    check_backends(suite.backends)
    for name, values, cap in (("tokens", suite.tokens, MAX_TOKENS), ("heads", suite.heads, MAX_HEADS),
                              ("head_dim", suite.head_dims, MAX_HEAD_DIM)):
        for v in values:
            if not _is_int(v) or v < 1:
                raise UserError(f"--{name.replace('_', '-')} {v}: must be a positive integer")
            if v > cap:
                raise UserError(f"--{name.replace('_', '-')} {v}: more than {cap}")
    if not isinstance(suite.block, bool):
        raise UserError(f"block = {suite.block!r}: must be true or false")
    if not _is_int(suite.seed) or suite.seed < 0:
        raise UserError(f"--seed {suite.seed!r}: must be a non-negative integer")
    if not _is_int(suite.context) or not MIN_SEQ <= suite.context <= MAX_TOKENS:
        raise UserError(f"--context {suite.context!r}: must be an integer in [{MIN_SEQ}, {MAX_TOKENS}]")
    for d in suite.distributions:
        get_distribution(d if not d.startswith("batches:") else expand_distribution(d)[0][0])
        longest = longest_sequence(d) if not d.startswith("batches:") else None
        if longest is not None and longest > suite.context:
            raise UserError(f"distribution {d!r}: a sequence of {longest} tokens is longer than --context "
                            f"{suite.context} (raise --context; sequences are never cut)")
    for f in fields(TimingOptions):
        if f.name == "watch_pairs":
            continue                                  # checked where the suite file is read
        value, kind = getattr(suite.timing, f.name), f.type
        ok = (_is_int(value) if kind == "int" else isinstance(value, bool) if kind == "bool"
              else isinstance(value, str) if kind == "str"
              else isinstance(value, (int, float)) and not isinstance(value, bool))
        if not ok:
            raise UserError(f"timing option {f.name} = {value!r}: must be of type {kind}")
    for dt in suite.dtypes:
        if dt not in DTYPES:
            raise UserError(f"--dtype {dt!r}: choose from {', '.join(DTYPES)}")
    t = suite.timing
    if t.mode not in TIMING_MODES:
        raise UserError(f"--timing {t.mode!r}: choose from {', '.join(TIMING_MODES)}")
    if t.min_reps < 1 or t.max_reps < t.min_reps:
        raise UserError(f"need 1 <= min_reps ({t.min_reps}) <= max_reps ({t.max_reps})")
    if t.max_reps > MAX_REPS:
        raise UserError(f"--max-reps {t.max_reps}: more than {MAX_REPS}")
    for flag, value in (("--warmup", t.warmup), ("--phase-reps", t.phase_reps)):
        if not 0 <= value <= MAX_REPS:
            raise UserError(f"{flag} {value}: must lie in [0, {MAX_REPS}]")
    if not (math.isfinite(t.time_cap_s) and t.time_cap_s > 0):
        raise UserError(f"--time-cap {t.time_cap_s}: must be a finite number of seconds > 0")
    if not (math.isfinite(t.target_rel_ci) and 0 < t.target_rel_ci < 1):
        raise UserError(f"target relative CI {t.target_rel_ci} must lie in (0, 1)")
    for c in suite.configs():          # batches: a batch larger than --tokens, or longer than --context
        if c.distribution.startswith("batches:"):
            pack(get_distribution(c.distribution), c.tokens, c.seed, c.context)
