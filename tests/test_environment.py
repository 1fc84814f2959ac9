"""bench/harness/environment.py: the git revision a record names."""
from __future__ import annotations

import re

from bench.harness.environment import git_revision


def test_stated_revision_wins_over_the_checkouts_metadata(monkeypatch) -> None:
    monkeypatch.setenv("PREFIXBENCH_GIT_REVISION", "abc1234")
    assert git_revision() == "abc1234"


def test_without_a_stated_revision_the_checkout_answers(monkeypatch) -> None:
    monkeypatch.delenv("PREFIXBENCH_GIT_REVISION", raising=False)
    rev = git_revision()
    assert rev is None or re.fullmatch(r"[0-9a-f]{40}(-dirty)?", rev)
