"""bench/harness/environment.py: the git revision a record names."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bench.harness import environment
from bench.harness.environment import git_revision


def test_stated_revision_wins_over_the_checkouts_metadata(monkeypatch) -> None:
    monkeypatch.setenv("PREFIXBENCH_GIT_REVISION", "abc1234")
    assert git_revision() == "abc1234"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(repo), "PATH": "/usr/bin:/bin"}
                          ).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git executable")
def test_without_a_stated_revision_the_checkout_answers(tmp_path, monkeypatch) -> None:
    """A checkout of its own (not this tree's metadata, absent from an archive copy): HEAD, then -dirty."""
    monkeypatch.delenv("PREFIXBENCH_GIT_REVISION", raising=False)
    tree = tmp_path / "copy"
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))          # no enclosing checkout answers
    (tree / "bench" / "harness").mkdir(parents=True)
    monkeypatch.setattr(environment, "__file__", str(tree / "bench" / "harness" / "environment.py"))
    assert git_revision() is None                          # no git metadata: says so, never guesses
    (tree / "tracked.txt").write_text("a\n")
    _git(tree, "init", "-q")
    _git(tree, "add", "tracked.txt")
    _git(tree, "commit", "-q", "-m", "first")
    head = _git(tree, "rev-parse", "HEAD")
    assert git_revision() == head
    (tree / "tracked.txt").write_text("b\n")
    assert git_revision() == head + "-dirty"
