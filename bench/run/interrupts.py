"""Ctrl-C and SIGTERM end a run with one line and exit 130 / 143, never a traceback.

The parent process owns the message: worker processes ignore SIGINT (bench.harness.isolation) and are
killed by the parent on its way out. SIGINT and SIGTERM raise `Interrupted` in the main thread, a
BaseException but not a KeyboardInterrupt, so neither typer nor an `except Exception` swallows it; the
command that knows its output directory names what was kept and how to resume. Torch-free: cli.py
installs the handlers before its own imports.
"""
from __future__ import annotations

import shlex
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; `line` is what the user is told (set by the command that was running)."""

    def __init__(self, signum: int, line: Optional[str] = None):
        super().__init__(signum)
        self.signum = signum
        self.line = line

    @property
    def exit_code(self) -> int:
        return 128 + self.signum                     # 130 for SIGINT, 143 for SIGTERM

    @property
    def what(self) -> str:
        return "interrupted" if self.signum == signal.SIGINT else f"interrupted ({signal.Signals(self.signum).name})"


def _raise_interrupted(signum: int, frame: object) -> None:
    for s in SIGNALS:           # a second signal during clean-up is ignored: the first one's line and code stand
        signal.signal(s, signal.SIG_IGN)
    raise Interrupted(signum)


def install() -> dict:
    """SIGINT and SIGTERM raise `Interrupted` from now on; returns the previous handlers (empty off the main
    thread, where handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, _raise_interrupted) for s in SIGNALS}


def ignore_from_now() -> None:
    """After the command has returned its code: a late signal must neither change that code nor kill the
    interpreter while it shuts down (Python puts the default handler back for handlers that are functions,
    not for SIG_IGN)."""
    if threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN)


def restore(previous: dict) -> None:
    for s, handler in previous.items():
        signal.signal(s, handler)


@contextmanager
def while_starting(module_name: str) -> Iterator[None]:
    """Around cli.py's imports: a signal there is one line and its exit code, not an import traceback.

    The handlers are put back afterwards (importing cli in a test changes nothing), and a worker process
    re-importing cli as `__mp_main__` installs none (it ignores SIGINT; SIGTERM ends it quietly)."""
    if module_name == "__mp_main__":
        yield
        return
    previous = install()
    try:
        yield
    except Interrupted as exc:
        print(f"prefixbench: {exc.what} while starting; nothing was written", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    finally:
        restore(previous)


def kept_line(exc: Interrupted, command: str, out_dir: Path, results_name: str) -> str:
    """'interrupted: N records kept; resume with: prefixbench COMMAND --out DIR --resume' (or that none were)."""
    from bench.results.io import read_record_file
    path = Path(out_dir) / results_name
    try:
        kept = len(read_record_file(path, warn=lambda _: None)) if path.is_file() else 0
    except Exception:  # noqa: BLE001 - an unreadable file must not turn the one line into a traceback
        kept = 0
    if not kept:
        return f"prefixbench: {exc.what} before the first record was written (nothing to resume)"
    return (f"prefixbench: {exc.what}: {kept} records kept in {path}; resume with: "
            f"prefixbench {command} --out {shlex.quote(str(out_dir))} --resume")


class RunOutput:
    """Where a running command writes; mutable, because a sweep may settle on a fresh directory once it
    has read the grid (a re-run of a finished one)."""

    def __init__(self, command: str, out_dir: Path, results_name: str):
        self.command, self.out_dir, self.results_name = command, Path(out_dir), results_name


@contextmanager
def naming_kept_records(command: str, out_dir: Path, results_name: str) -> Iterator[RunOutput]:
    """An `Interrupted` leaving this block carries the line that says what was kept and how to resume."""
    where = RunOutput(command, out_dir, results_name)
    try:
        yield where
    except Interrupted as exc:
        exc.line = kept_line(exc, where.command, where.out_dir, where.results_name)
        raise
