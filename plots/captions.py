"""One caption per appendix figure that states what the figure shows, computed from its own data.

A caption that repeats the title tells the reader nothing; each function here says the finding
(which variant is fastest, how much of the backward the zero-fill takes, which patterns crash).
"""
from __future__ import annotations

from statistics import median
from typing import Any, Callable

from bench.spec.study import load_study
from plots import figure_data as fd
from plots.records import RunData


def _study(verdict: Any):
    return verdict.study if verdict is not None else load_study()


def hot_path_caption(data: RunData, verdict: Any) -> str:
    s = _study(verdict)
    cost = fd.hot_path_cost(data.records, s.baseline)
    if not cost:
        return ""
    best: dict[str, int] = {}
    configs = 0
    for per in cost.values():
        by_tokens: dict[int, list[tuple[float, str]]] = {}
        for v, pts in per.items():
            for p in pts:
                by_tokens.setdefault(p["tokens"], []).append((p["ratio"], v))
        for pts in by_tokens.values():
            configs += 1
            name = min(pts)[1]
            best[name] = best.get(name, 0) + 1
    top = max(best, key=best.get)
    ratios = [p["ratio"] for per in cost.values() for p in per.get(top, [])]
    return (f"{top} has the lowest backward time in {best[top]} of {configs} configurations, "
            f"{min(ratios):.2f}x to {max(ratios):.2f}x of {s.baseline}'s; the baseline is the same variant "
            "everywhere, so a curve's shape is the variant's, not a change of reference.")


def phases_caption(data: RunData, verdict: Any) -> str:
    s = _study(verdict)
    rows = fd.phase_breakdown(data.records)
    share = {}
    for v in (s.baseline, s.merged):
        fracs = [r["segments_ms"].get("alloc + zero-fill", 0.0) / sum(max(0.0, x) for x in r["segments_ms"].values())
                 for r in rows if r["variant"] == v and sum(r["segments_ms"].values()) > 0]
        if fracs:
            share[v] = 100 * median(fracs)
    if not share:
        return "The two FlashAttention passes take most of the backward time."
    parts = [f"{v} {pct:.1f}%" for v, pct in share.items()]
    return ("The two FlashAttention passes take most of the backward; alloc + zero-fill, what the PR removes, "
            f"is a median {' vs '.join(parts)} of it.")


def boundary_caption(data: RunData, verdict: Any) -> str:
    m = fd.boundary_matrix(data.validation)
    bad = [p for p in m["patterns"] if any(m["cells"].get((v, p), {}).get("outcome", "ok") != "ok"
                                           for v in m["variants"])]
    clean = [v for v in m["variants"] if all(m["cells"].get((v, p), {}).get("outcome", "ok") == "ok"
                                             for p in m["patterns"])]
    text = (f"{len(bad)} of {len(m['patterns'])} batch patterns fail some variant (drawn); the other "
            f"{len(m['patterns']) - len(bad)} pass everywhere")
    if clean:
        text += f"; {', '.join(clean)} pass{'es' if len(clean) == 1 else ''} every pattern"
    return text + "."


def peers_caption(data: RunData, verdict: Any) -> str:
    rows = fd.peers(data.records)
    wins: dict[str, int] = {}
    for r in rows:
        timed = [(i["forward_ms"] + i["backward_ms"], i["name"]) for i in r["implementations"]
                 if i["forward_ms"] is not None and i["backward_ms"] is not None and not i["name"].endswith("_bound")]
        if timed:
            name = min(timed)[1]
            wins[name] = wins.get(name, 0) + 1
    if not wins:
        return ""
    top = max(wins, key=wins.get)
    return (f"{top} is the fastest implementation (fwd+bwd, bounds excepted) in {wins[top]} of {len(rows)} "
            "configurations; one panel per distribution at its largest token budget, every configuration in "
            "the Peers table.")


CAPTIONS: dict[str, Callable[[RunData, Any], str]] = {
    "hot_path_cost": hot_path_caption,
    "phases": phases_caption,
    "boundary": boundary_caption,
    "peers": peers_caption,
}
