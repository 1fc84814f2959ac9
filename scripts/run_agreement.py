"""Do two runs of one configuration agree within their paired-delta intervals?

Why a script: a paired interval is made from the rounds of one run; whether it covers the spread
between runs is only seen by comparing runs. For every configuration that two or more runs measured,
it forms the paired backward delta a - b in each run on one clock, with the within-run interval
(order statistics, `paired_difference_within`) and the reported one (`paired_difference`, widened by
the spread between blocks of the run), and counts the pairs of runs whose intervals do not overlap.
It also prints what the drift looks like: the medians of contiguous blocks, the rank correlation of
the delta with the pair's mean time (a proxy for the GPU's clock), and the order effect (the
delta in rounds that ran a first against rounds that ran b first). Usage (the committed H100 runs by default):

    python scripts/run_agreement.py [--clock gpu|eager] [--all-pairs] [--blocks] [RUN ...]
"""
from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results.derived import paired_difference, paired_difference_within  # noqa: E402
from bench.results.records import Record, load_records  # noqa: E402
from bench.results.stats import Z_95, Stat, block_count, block_medians, median, paired_deltas  # noqa: E402
from bench.spec.errors import UserError  # noqa: E402
from bench.spec.study import load_study  # noqa: E402

H100 = ROOT / "results" / "h100"
# Runs of one measurement method: the gpu clock and the drained eager clock came in with the held
# stream; the earlier eager runs synchronized once per round (docs/CLOCKS.md), so they form their own set.
RUN_SETS = {
    "gpu": [("gpu", ["review/sweep", "pr_delta", "scaling"])],
    "eager": [("eager", ["review/sweep", "pr_delta", "scaling"]),
              ("eager, one sync per round", ["default_runA", "default_runB", "default_runC", "default_runD",
                                             "pfc64k_long", "peers", "torchrun_2gpu", "seed_pr"])],
}


@dataclass(frozen=True)
class Measured:
    """One run's delta a - b at one configuration."""
    run: str
    within: Stat
    reported: Stat
    pairs: list[float]
    rounds: list[float]          # a - b per round, unpaired (even and odd rounds ran the pair in opposite orders)
    level: list[float]           # (a + b) / 2 per pair of rounds: the clock's proxy (uncorrelated with
                                 # a - b when both scatter alike, unlike b alone)


@dataclass(frozen=True)
class Comparison:
    config: str
    pair: tuple[str, str]
    runs: list[Measured]

    def disagreements(self, which: str) -> list[tuple[str, str]]:
        """Pairs of runs whose `which` ("within" | "reported") intervals do not overlap."""
        out = []
        for x, y in itertools.combinations(self.runs, 2):
            sx, sy = getattr(x, which), getattr(y, which)
            if sx.hi < sy.lo or sy.hi < sx.lo:
                out.append((x.run, y.run))
        return out


def _key(rec: Record, clock: str) -> str:
    """The samples key of `clock`'s backward in a record (the mode's clock is plain `backward`)."""
    return "backward" if (rec.timing_mode or "eager") == clock else f"{clock}_backward"


def _by_config(run: Path, clock: str) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    for rec in load_records(run):
        s = (rec.samples_ms or {}).get(_key(rec, clock)) if rec.status == "ok" else None
        if s and rec.kind == "variant":
            out.setdefault(rec.config_id, {})[rec.variant] = s
    return out


def compare(runs: list[Path], clock: str, pairs: Optional[list[tuple[str, str]]] = None,
            min_pairs: int = 10) -> list[Comparison]:
    """Every configuration x variant pair measured by two or more of `runs` on `clock`."""
    data = {str(r.relative_to(H100)) if r.is_relative_to(H100) else str(r): _by_config(r, clock) for r in runs}
    configs = sorted({c for d in data.values() for c in d})
    out = []
    for config in configs:
        present = [(name, d[config]) for name, d in data.items() if config in d]
        names = sorted({n for _, v in present for n in v})
        todo = pairs if pairs is not None else [(a, b) for a, b in itertools.combinations(names, 2)]
        for a, b in todo:
            measured = []
            for name, recs in present:
                if a not in recs or b not in recs:
                    continue
                d = paired_deltas(recs[a], recs[b])
                if len(d) < min_pairs:
                    continue
                level = paired_deltas([(x + y) / 2 for x, y in zip(recs[a], recs[b])], [0.0] * len(recs[b]))
                measured.append(Measured(name, paired_difference_within(recs[a], recs[b]),
                                         paired_difference(recs[a], recs[b]), d,
                                         [x - y for x, y in zip(recs[a], recs[b])], level))
            if len(measured) >= 2:
                out.append(Comparison(config, (a, b), measured))
    return out


def _rank(xs: list[float]) -> list[float]:
    order = sorted(range(len(xs)), key=xs.__getitem__)
    r = [0.0] * len(xs)
    for i, j in enumerate(order):
        r[j] = float(i)
    return r


def spearman(x: list[float], y: list[float]) -> float:
    """Rank correlation (no tie correction: timings rarely tie)."""
    rx, ry = _rank(x), _rank(y)
    n = len(x)
    mx, my = sum(rx) / n, sum(ry) / n
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    var = (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5
    return cov / var if var else 0.0


def _fmt(s: Stat) -> str:
    return f"{s.median:.3f} [{s.lo:.3f}, {s.hi:.3f}]"


def _short(config: str) -> str:
    return config.split("/h")[0]


def report(title: str, comparisons: list[Comparison], show_blocks: bool) -> tuple[int, int, int]:
    """Print one run set's table; return (pairs of runs, disagreeing within-run, disagreeing reported)."""
    print(f"\n## {title}\n")
    print("| configuration | a - b | run | pairs | within-run | reported | blocks | drift rho |")
    print("|---|---|---|---|---|---|---|---|")
    total = bad_within = bad_reported = 0
    for c in comparisons:
        n_pairs = len(c.runs) * (len(c.runs) - 1) // 2
        total += n_pairs
        w, r = c.disagreements("within"), c.disagreements("reported")
        bad_within += len(w)
        bad_reported += len(r)
        for m in c.runs:
            k = block_count(len(m.pairs))
            blocks = ", ".join(f"{x:.3f}" for x in block_medians(m.pairs, k)) if k and show_blocks else (k or "-")
            print(f"| {_short(c.config)} | {c.pair[0]} - {c.pair[1]} | {m.run} | {len(m.pairs)} | {_fmt(m.within)} "
                  f"| {_fmt(m.reported)} | {blocks} | {spearman(m.pairs, m.level):+.2f} |")
        for x, y in w:
            print(f"| | | within-run intervals of {x} and {y} do not overlap"
                  f"{'' if (x, y) in r else '; reported ones do'} | | | | | |")
        for x, y in r:
            print(f"| | | reported intervals of {x} and {y} still do not overlap | | | | | |")
    print(f"\n{title}: {total} pairs of runs; intervals do not overlap in {bad_within} (within-run) and "
          f"{bad_reported} (reported)")
    return total, bad_within, bad_reported


def dispersion(pairs: list[float], within: Stat) -> Optional[float]:
    """The block medians' standard deviation over what independent rounds would give them (the within-run
    interval's standard error times sqrt(blocks)): about 1 without drift, above 1 where the delta moves."""
    k = block_count(len(pairs))
    width = within.hi - within.lo
    if not k or width <= 0:
        return None
    meds = block_medians(pairs, k)
    mean = sum(meds) / k
    sd = (sum((x - mean) ** 2 for x in meds) / (k - 1)) ** 0.5
    return sd / (k ** 0.5 * width / (2 * Z_95))


def drift_table(comparisons: list[Comparison]) -> None:
    """Per run: the dispersion of its block medians (drift the block interval absorbs) and the delta in
    even rounds against odd rounds (the two orders of the pair, which `paired_deltas` averages)."""
    print("\n| configuration | run | blocks | dispersion | widening | even rounds | odd rounds |")
    print("|---|---|---|---|---|---|---|")
    for c in comparisons:
        for m in c.runs:
            disp = dispersion(m.pairs, m.within)
            width = m.within.hi - m.within.lo
            widen = (m.reported.hi - m.reported.lo) / width if width > 0 else 1.0
            print(f"| {_short(c.config)} | {m.run} | {block_count(len(m.pairs)) or '-'} "
                  f"| {'-' if disp is None else f'{disp:.1f}'} | x{widen:.2f} | {median(m.rounds[0::2]):.3f} "
                  f"| {median(m.rounds[1::2]):.3f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", type=Path, help="run directories (default: the committed H100 runs)")
    ap.add_argument("--clock", choices=("gpu", "eager"), default="gpu")
    ap.add_argument("--all-pairs", action="store_true", help="every variant pair, not only the study's PR delta")
    ap.add_argument("--blocks", action="store_true", help="print block medians and their spread")
    args = ap.parse_args()
    study = load_study()
    pairs = None if args.all_pairs else [(study.baseline, study.merged)]
    sets = ([(args.clock, args.runs)] if args.runs else
            [(t, [H100 / r for r in rs]) for t, rs in RUN_SETS[args.clock]])
    try:
        results = [(t, compare(rs, args.clock, pairs)) for t, rs in sets]
    except UserError as exc:
        print(f"run_agreement: {exc}", file=sys.stderr)
        return 2
    if not any(c for _, c in results):
        print("run_agreement: no configuration was measured by two runs", file=sys.stderr)
        return 2
    print(f"backward ms on the {args.clock} clock, paired deltas a - b per pair of rounds; drift rho: rank "
          "correlation of the delta with the pair's mean time along the run")
    for title, comparisons in results:
        report(title, comparisons, args.blocks)
        if args.blocks:
            drift_table(comparisons)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
