"""The study a verdict answers, read from a TOML file beside the suites (torch-free).

A study names the variants that play each role in the verdict (the baseline the PR replaced, the PR as
merged, its first commit, prefixbench's own, and the unguarded version before the guard), with a short
label, an origin and a commit for each, so another PR's variants get the same verdict from a new file
and no code change.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from bench.spec.errors import UserError

STUDIES_DIR = Path(__file__).resolve().parents[1] / "suites" / "studies"
DEFAULT_STUDY = STUDIES_DIR / "guard_pr.toml"
ROLES = ("baseline", "merged", "first_commit", "ours", "unguarded")
REQUIRED_ROLES = ("baseline", "merged")


@dataclass(frozen=True)
class Study:
    """Roles -> variant names, plus what the report says about each variant."""
    name: str
    question: str
    baseline: str
    merged: str
    first_commit: Optional[str] = None
    ours: Optional[str] = None
    unguarded: Optional[str] = None
    short: dict[str, str] = field(default_factory=dict)      # variant -> column label ("#9")
    origin: dict[str, str] = field(default_factory=dict)     # variant -> where it comes from
    commit: dict[str, str] = field(default_factory=dict)     # variant -> commit, where known
    needs: dict[str, str] = field(default_factory=dict)      # implementation -> what it needs installed

    @property
    def pr_variants(self) -> tuple[str, ...]:
        """The PR's own variants, merged first (the order of the crash answer)."""
        return tuple(v for v in (self.merged, self.first_commit) if v)

    @property
    def variants(self) -> tuple[str, ...]:
        """Every variant with a role, in verdict order (the unguarded one last)."""
        return tuple(v for v in (self.baseline, self.first_commit, self.merged, self.ours, self.unguarded) if v)

    def label(self, variant: str) -> str:
        return self.short.get(variant, variant)

    def describe(self, variant: str) -> str:
        return self.origin.get(variant, "not in the study")


def load_study(path: str | Path | None = None) -> Study:
    """Read a study file (default: the guard PR's); a bad file is one UserError line."""
    p = Path(path) if path is not None else DEFAULT_STUDY
    if not p.is_file():
        raise UserError(f"study file {p} does not exist")
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"study file {p}: not valid TOML ({exc})") from None
    roles = data.get("roles") or {}
    missing = [r for r in REQUIRED_ROLES if not roles.get(r)]
    if missing:
        raise UserError(f"study file {p}: [roles] lacks {', '.join(missing)}")
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise UserError(f"study file {p}: unknown role {', '.join(unknown)} (roles: {', '.join(ROLES)})")
    variants = data.get("variants") or {}
    pick = lambda key: {n: str(v[key]) for n, v in variants.items() if isinstance(v, dict) and key in v}  # noqa: E731
    return Study(name=str(data.get("name", p.stem)), question=str(data.get("question", "what the PR saves")),
                 **{r: str(roles[r]) for r in ROLES if roles.get(r)},
                 short=pick("short"), origin=pick("origin"), commit=pick("commit"),
                 needs={str(k): str(v) for k, v in (data.get("needs") or {}).items()})
