"""The command line's shared options, declared once: each axis, choice and output flag as an `Annotated` type.

Torch-free, like everything `--help` imports: the choices are plain data (bench.spec.names, the backend
registry, profiles.options), each kept equal to its source by a test. Enumerated flags list their choices in `--help`; a value outside them is one line on stderr and exit 2
(`bench.spec.errors.UserError`), the same as any other bad input.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Callable, List, Optional, Sequence

import typer

from bench.spec.distributions import NAMED, get_distribution
from bench.spec.errors import UserError
from bench.spec.grid import DTYPES
from bench.spec.names import PEER_NAMES, PHASE_ORDER, RETIRED_VARIANTS, VARIANT_ORDER
from prefixlm_attn.backends.registry import BACKEND_CHOICES, mirror_names
from profiles.options import CACHE_CONTROLS, CLOCK_CONTROLS
from profiles.options import TOOLS as PROFILE_TOOLS

DISTRIBUTION_FORMS = ("frac:LO-HI", "file:PATH", "batches:PATH")
METRICS = ("backward", "forward")        # what compare compares (plots.compare.METRICS; a test keeps them equal)
DEVICE_CHOICES = ("auto", "cuda", "cpu")
ISOLATION_CHOICES = ("process", "none")


class NamedChoice:
    """A flag's allowed values: a parser that refuses anything else with a one-line `UserError` (not a usage
    screen), and a metavar that lists them in `--help`."""

    def __init__(self, choices: Sequence[str], refuse: Callable[[str, Sequence[str]], str]):
        self.choices = tuple(choices)
        self.refuse = refuse

    @property
    def metavar(self) -> str:
        return "[" + "|".join(self.choices) + "]"

    def __call__(self, value: str) -> str:
        if value in self.choices:
            return value
        raise UserError(self.refuse(str(value), self.choices))


class DistributionChoice(NamedChoice):
    """Named distributions are listed; `frac:`, `file:` and `batches:` specs pass through to the workload parser."""

    def __init__(self) -> None:
        super().__init__(list(NAMED), lambda value, _: "")

    @property
    def metavar(self) -> str:
        return "[" + "|".join([*self.choices, *DISTRIBUTION_FORMS]) + "]"

    def __call__(self, value: str) -> str:
        if value in self.choices or value.startswith(tuple(f.split(":")[0] + ":" for f in DISTRIBUTION_FORMS)):
            return value
        get_distribution(value)                # raises the workload's own one-line message
        return value


def choice(kind: NamedChoice) -> dict:
    """typer.Option keywords for a choice flag."""
    return {"parser": kind, "metavar": kind.metavar}


def _unknown(noun: str) -> Callable[[str, Sequence[str]], str]:
    return lambda value, choices: f"unknown {noun} {value!r}; choose from {', '.join(choices)}"


def _flag(flag: str) -> Callable[[str, Sequence[str]], str]:
    return lambda value, choices: f"{flag} {value!r}: choose {', '.join(choices)}"


VARIANT_TYPE = NamedChoice([n for n in VARIANT_ORDER if n not in RETIRED_VARIANTS], _unknown("variant"))
PEER_TYPE = NamedChoice(PEER_NAMES, _unknown("peer"))
DTYPE_TYPE = NamedChoice(DTYPES, lambda v, c: f"--dtype must be one of {', '.join(c)}, not {v!r}")
BACKEND_TYPE = NamedChoice((*BACKEND_CHOICES, *mirror_names()), _unknown("backend"))
DEVICE_TYPE = NamedChoice(DEVICE_CHOICES, lambda v, c: f"--device {v!r}: choose auto, cuda or cpu")
ISOLATION_TYPE = NamedChoice(ISOLATION_CHOICES, lambda v, c: f"--isolation {v!r}: choose process or none")
TOOL_TYPE = NamedChoice(PROFILE_TOOLS, _flag("--tool"))
RANGE_TYPE = NamedChoice(PHASE_ORDER, lambda v, c: f"--range {v!r}: not a phase; choose from {', '.join(c)}")
CLOCK_TYPE = NamedChoice(CLOCK_CONTROLS, _flag("--clock-control"))
CACHE_TYPE = NamedChoice(CACHE_CONTROLS, _flag("--cache-control"))
METRIC_TYPE = NamedChoice(METRICS, lambda v, c: f"--metric must be one of {', '.join(c)}, not {v!r}")

# --- the grid's axes (repeatable; empty = the suite's own) ----------------------------------------------------
Variants = Annotated[List[str], typer.Option("--variant", **choice(VARIANT_TYPE),
                                             help="Variant(s) to measure (repeatable).")]
ProfileVariants = Annotated[List[str], typer.Option("--variant", **choice(VARIANT_TYPE),
                                                    help="Variant(s) to profile (repeatable).")]
CheckedVariants = Annotated[Optional[List[str]], typer.Option("--variant", **choice(VARIANT_TYPE),
                                                              help="Variant to check (repeatable; default all).")]
Peers = Annotated[List[str], typer.Option("--peer", **choice(PEER_TYPE),
                                          help="Peer implementation(s) to measure (repeatable; "
                                               "`prefixbench variants` says what each needs).")]
Distributions = Annotated[List[str], typer.Option(
    "--distribution", **choice(DistributionChoice()),
    help="A named distribution, frac:LO-HI (prefix fraction drawn in [LO, HI]), file:PATH (lengths drawn from a "
         "CSV/JSONL of prefix_len,causal_len) or batches:PATH (packed batches replayed in order; repeatable).")]
Tokens = Annotated[List[int], typer.Option("--tokens", help="Tokens per packed batch (repeatable).")]
Heads = Annotated[List[int], typer.Option("--heads", help="Attention heads (repeatable).")]
HeadDims = Annotated[List[int], typer.Option("--head-dim", help="Head dimension (repeatable).")]
Dtypes = Annotated[List[str], typer.Option("--dtype", **choice(DTYPE_TYPE), help="Tensor dtype (repeatable).")]
OneDtype = Annotated[Optional[str], typer.Option("--dtype", **choice(DTYPE_TYPE),
                                                 help="Default bfloat16 on cuda, float32 on cpu.")]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Seed for the batches and tensors.")]
Context = Annotated[Optional[int], typer.Option("--context", help="Longest sequence a distribution draws.")]
SuiteName = Annotated[Optional[str], typer.Option("--suite", help="Suite name (bench/suites/*.toml) or path. "
                                                                  "Default: 'default' on CUDA, 'smoke' without.")]

# --- where it runs ----------------------------------------------------------------------------------------------
Backend = Annotated[Optional[str], typer.Option(
    "--backend", **choice(BACKEND_TYPE),
    help="auto: the first of fa3, fa4 that loads on CUDA (refused when neither does), the reference on CPU.")]
Backends = Annotated[List[str], typer.Option(
    "--backend", **choice(BACKEND_TYPE),
    help="auto: the first of fa3, fa4 that loads on CUDA (refused when neither does), the reference on CPU. Repeatable: a backend "
         "axis (--backend fa3 --backend fa4) runs every backend's variants in the same rounds.")]
Device = Annotated[Optional[str], typer.Option("--device", **choice(DEVICE_TYPE), help="auto: cuda when visible.")]
Isolation = Annotated[str, typer.Option("--isolation", **choice(ISOLATION_TYPE),
                                        help="process (crash-safe worker) | none (in-process, fast).")]

# --- output -----------------------------------------------------------------------------------------------------
Out = Annotated[Path, typer.Option("--out", help="Output directory.")]
Resume = Annotated[bool, typer.Option("--resume", help="Keep what DIR already records and run the rest.")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout (notices stay on stderr).")]
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="Progress on stderr.")]

# --- profile ----------------------------------------------------------------------------------------------------
Tool = Annotated[str, typer.Option("--tool", **choice(TOOL_TYPE),
                                   help="auto (nsys when found, else torch) | nsys | ncu | torch")]
Ranges = Annotated[List[str], typer.Option("--range", **choice(RANGE_TYPE),
                                           help="ncu: phase range(s) to profile "
                                                "(default bwd.zero_fill, bwd.accumulate).")]
ClockControl = Annotated[str, typer.Option(
    "--clock-control", **choice(CLOCK_TYPE),
    help="ncu: base (ncu's default: SM clock locked to base, repeatable, slower than nsys) | "
         "none (boost, as a sweep runs).")]
CacheControl = Annotated[str, typer.Option(
    "--cache-control", **choice(CACHE_TYPE),
    help="ncu: all (ncu's default: caches flushed before each kernel) | none (warm caches, as a sweep runs).")]

# --- compare ----------------------------------------------------------------------------------------------------
Metric = Annotated[str, typer.Option("--metric", **choice(METRIC_TYPE), help="Timing to compare.")]
