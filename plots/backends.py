"""Backends side by side: a run of several backends (`sweep --backend fa3 --backend fa4`) read per variant.

Every backend's implementations ran in the same interleaved rounds of one configuration, so each
comparison is a paired delta (plots.deltas: faster / slower / same, never a difference inside the noise),
shown as a ratio to the run's first backend. A run of one backend gives no rows and no section.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from bench.results.records import Record
from bench.results.stats import Stat
from bench.spec.names import SINGLE_PASS_VARIANTS, split_backend, variants_first
from plots.deltas import Delta, FASTER, fmt_interval, fmt_value, paired
from plots.records import by_config, config_sort_key

AUTO = "auto"
TIMED_KINDS = ("variant", "block")


@dataclass(frozen=True)
class SideBySide:
    """One implementation on the first backend (`base`) and on another (`other`) in one configuration."""
    config: str
    name: str
    base: Record
    other: Record
    delta: Optional[Delta]          # base - other, fwd+bwd per pair of rounds (positive: other faster)
    why: str = ""                   # no delta: a record not ok, or the two from different runs

    def ratio(self) -> Optional[Stat]:
        """other / base, fwd+bwd, with the paired delta's 95% interval carried over."""
        base = fwd_bwd(self.base)
        if self.delta is None or self.delta.stat is None or base is None or not base.median:
            return None
        d, m = self.delta.stat, base.median
        return Stat(1 - d.median / m, 1 - d.hi / m, 1 - d.lo / m, d.n)


def fwd_bwd(rec: Record) -> Optional[Stat]:
    """The record's fwd+bwd on its timing mode's clock (per-round sums, as the sweep stored them)."""
    if not rec.ok:
        return None
    return rec.stat(f"{rec.timing_mode or 'eager'}.fwd_bwd")


def _round_sums(rec: Record) -> Optional[list[float]]:
    s = rec.samples_ms or {}
    fwd, bwd = s.get("forward"), s.get("backward")
    return [a + b for a, b in zip(fwd, bwd)] if fwd and bwd else None


def _pair(config: str, name: str, base: Record, other: Record, same_run: bool) -> SideBySide:
    if not (base.ok and other.ok):
        return SideBySide(config, name, base, other, None, "")
    if not same_run:
        return SideBySide(config, name, base, other, None, "different runs: no paired interval")
    return SideBySide(config, name, base, other, paired(_round_sums(base), _round_sums(other)))


def backends_of(records: list[Record]) -> list[str]:
    """The backends of the op's variants in these records, the first backend first."""
    timed = [r for r in records if r.kind in TIMED_KINDS and r.backend]
    first = [r.backend for r in timed if split_backend(r.variant)[1] is None]
    return list(dict.fromkeys(first + [r.backend for r in timed]))


def side_by_side(records: list[Record], run_of: Optional[dict[tuple[str, str], Path]] = None) -> list[SideBySide]:
    """Per configuration, variant and later backend: that backend's record beside the first backend's."""
    out = []
    for group in sorted(by_config(records).values(), key=lambda g: config_sort_key(g[0])):
        timed = [r for r in group if r.kind in TIMED_KINDS]
        base = {r.variant: r for r in timed if split_backend(r.variant)[1] is None}
        for rec in timed:
            name, backend = split_backend(rec.variant)
            if backend is None or name not in base:
                continue
            same = run_of is None or run_of.get((rec.config_id, name)) == run_of.get((rec.config_id, rec.variant))
            out.append(_pair(group[0].config.label, name, base[name], rec, same))
    order = {n: i for i, n in enumerate(variants_first(p.name for p in out))}
    return sorted(out, key=lambda p: (config_sort_key(p.base), p.other.backend or "", order[p.name]))


def single_pass_vs_auto(records: list[Record], run_of: Optional[dict[tuple[str, str], Path]] = None
                        ) -> list[SideBySide]:
    """Per configuration: each single-pass variant on its backend against `auto` on every other backend."""
    out = []
    for group in sorted(by_config(records).values(), key=lambda g: config_sort_key(g[0])):
        autos = [r for r in group if r.kind == "variant" and split_backend(r.variant)[0] == AUTO]
        for rec in group:
            name, _ = split_backend(rec.variant)
            if rec.kind != "variant" or name not in SINGLE_PASS_VARIANTS or rec.status == "skipped":
                continue
            for auto in (a for a in autos if a.backend != rec.backend):
                same = run_of is None or run_of.get((rec.config_id, rec.variant)) == run_of.get(
                    (auto.config_id, auto.variant))
                out.append(_pair(group[0].config.label, rec.variant, auto, rec, same))
    return out


def _status(pair: SideBySide) -> str:
    if not pair.base.ok or not pair.other.ok:
        bad = pair.base if not pair.base.ok else pair.other
        return f"{bad.variant} {bad.status}"
    if pair.delta is None:
        return pair.why or "no samples"
    return pair.delta.status(FASTER) if pair.delta.stat is not None else f"no interval ({pair.delta.pairs} pairs)"


def _ms(rec: Record) -> str:
    return fmt_value(fwd_bwd(rec)) if rec.ok else rec.status


def _ideal(rec: Record) -> str:
    ideal = rec.ideal or {}
    return f"{ideal['fwd_bwd']:.2f}x" if rec.ok and ideal.get("fwd_bwd") else "-"


def backend_blocks(records: list[Record], run_of: Optional[dict[tuple[str, str], Path]] = None) -> list[Any]:
    """The report's section: each variant on each later backend beside the first; then the single pass
    against `auto` on the other backend and against the ideal. Nothing for a run of one backend."""
    pairs = side_by_side(records, run_of)
    if not pairs:
        return []
    backends = backends_of(records)
    rows = [[p.config, p.name, _ms(p.base), _ms(p.other), p.other.backend or "-",
             fmt_interval(p.ratio()), _status(p), _ideal(p.base), _ideal(p.other)] for p in pairs]
    blocks: list[Any] = [
        ("h", 2, f"Backends side by side: {' vs '.join(backends)}"),
        ("p", f"Each variant on {backends[0]} (the run's first backend; its names carry no bracket) and on "
              "each other backend, timed in the same interleaved rounds of one configuration: fwd+bwd ms, the "
              "ratio other / first with the 95% interval of the paired per-round difference, and its status "
              "(faster: the other backend is faster, outside the noise; same: the interval holds 1). "
              "Over ideal: fwd+bwd over the PrefixLM pairs at FA3's bidirectional single-pass rate."),
        ("table", ["configuration", "variant", f"{backends[0]} ms", "other ms", "other backend",
                   "other / first [95%]", "status", f"{backends[0]} over ideal", "other over ideal"], rows)]
    single = single_pass_vs_auto(records, run_of)
    if single:
        rows = [[p.config, p.other.variant, _ms(p.other), p.base.variant, _ms(p.base), fmt_interval(p.ratio()),
                 _status(p), _ideal(p.other)] for p in single]
        blocks += [("h", 3, "The single pass against auto on the other backend"),
                   ("p", "Each single-pass variant against `auto` (the two-pass pick per batch) of another backend "
                         "in the same rounds: fwd+bwd ms, single / auto with its paired 95% interval (faster: the "
                         "single pass is faster), and the single pass over the ideal (1.00x: FA3's bidirectional "
                         "single-pass rate on PrefixLM pairs)."),
                   ("table", ["configuration", "single pass", "ms", "auto", "auto ms", "single / auto [95%]",
                              "status", "over ideal"], rows)]
    return blocks


def backend_terminal(records: list[Record]) -> str:
    """The side-by-side table as fixed-width text for the sweep's summary; "" for a run of one backend."""
    pairs = side_by_side(records)
    if not pairs:
        return ""
    backends = backends_of(records)
    headers = ["configuration", "variant", "backend", f"{backends[0]} ms", "ms", f"vs {backends[0]} [95%]", "status"]
    rows = [[p.config, p.name, p.other.backend or "-", _ms(p.base), _ms(p.other), fmt_interval(p.ratio()),
             _status(p)] for p in pairs]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]

    def line(cells: list[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    title = f"Backends side by side (fwd+bwd ms, same rounds; status of the later backend against {backends[0]})"
    return "\n".join([title, line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows]) + "\n"
