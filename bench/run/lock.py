"""One writer per output directory: `DIR/.prefixbench.lock` holds the writer's pid, host and command line.

Two sweeps (or a sweep and its own --resume, or two validates) writing one record file would leave
duplicates, so the second one stops with one line that says how to clear the lock. A lock is stale,
and taken over, when on this host its pid no longer runs or now runs another program: the pid was
reused, which `/proc/PID/cmdline` shows (it differs from the command line the lock recorded; a lock
without one counts as live only while its pid runs a prefixbench command). A lock from another host
is trusted, because its pid cannot be checked from here (remove the file by hand if that run is gone).
"""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Optional

from bench.spec.errors import UserError

LOCK_NAME = ".prefixbench.lock"
PREFIXBENCH_ARGV = ("prefixbench", "cli", "cli.py", "torch.distributed.run", "torchrun")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True                      # it runs, under another user
    except (OverflowError, ValueError):
        return False
    return True


def command_line(pid: int) -> Optional[list[str]]:
    """The argv of a process on this host (Linux /proc), or None where it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _is_prefixbench(argv: list[str]) -> bool:
    return any(Path(arg).name in PREFIXBENCH_ARGV for arg in argv)


def holds_lock(owner: dict) -> bool:
    """Whether the writer a lock names still runs: another host's is trusted; on this host its pid must
    run, and run the command line the lock recorded (else the pid was reused by another program)."""
    if owner.get("host") != socket.gethostname():
        return True
    if not pid_alive(owner["pid"]):
        return False
    now = command_line(owner["pid"])
    if now is None:                      # no /proc here: a running pid is all that can be known
        return True
    recorded = owner.get("cmdline")
    if isinstance(recorded, list):
        return now == recorded
    return _is_prefixbench(now)


def lock_owner(out_dir: Path) -> Optional[dict]:
    """The live writer of `out_dir` ({"pid", "host", "cmdline"}), or None when there is none (or it is stale)."""
    path = Path(out_dir) / LOCK_NAME
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
        return None
    return owner if holds_lock(owner) else None


def refusal(path: Path, owner: dict) -> str:
    """The one line a second writer gets: who holds the directory, and how to clear a lock left behind."""
    return (f"{path.parent} is being written by pid {owner['pid']} on {owner.get('host')}; wait for it, or use "
            f"another --out (if no such run is alive, remove {path} and run again)")


class DirLock:
    """Exclusive lock on an output directory for the life of a `with` block."""

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / LOCK_NAME
        self.held = False

    def acquire(self) -> "DirLock":
        me = {"pid": os.getpid(), "host": socket.gethostname(), "cmdline": command_line(os.getpid())}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = lock_owner(self.path.parent)
                if owner is not None:
                    raise UserError(refusal(self.path, owner))
                self._remove_stale()
                continue
            except OSError as exc:
                raise UserError(f"{self.path}: cannot create the lock ({exc.strerror or exc})") from None
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
                fh.flush()
                os.fsync(fh.fileno())
            self.held = True
            return self
        raise UserError(f"{self.path}: could not take the lock (another writer keeps taking it)")

    def _remove_stale(self) -> None:
        """Remove a stale lock, unless another process replaced it meanwhile (then it is re-checked)."""
        stale = self.path.with_name(f"{LOCK_NAME}.stale.{os.getpid()}")
        try:
            os.rename(self.path, stale)       # atomic: only one taker wins the stale file
        except FileNotFoundError:
            return
        try:
            owner = json.loads(stale.read_text())
        except (OSError, ValueError):
            owner = None
        if isinstance(owner, dict) and isinstance(owner.get("pid"), int) and holds_lock(owner):
            os.rename(stale, self.path)       # a live lock was swapped in meanwhile: put it back
            return
        stale.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> "DirLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
