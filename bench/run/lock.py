"""One writer per output directory: `DIR/.prefixbench.lock` holds the writer's pid and host.

Two sweeps (or a sweep and its own --resume) writing one results.jsonl would leave duplicates, so
the second one stops with one line. A lock left behind by a process that died on this host (its
pid no longer runs) is stale and taken over; a lock from another host is trusted, because its pid
cannot be checked from here (remove the file by hand if that host's run is gone).
"""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from bench.results.io import LOCK_NAME, lock_owner, pid_alive
from bench.spec.errors import UserError

class DirLock:
    """Exclusive lock on an output directory for the life of a `with` block."""

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / LOCK_NAME
        self.held = False

    def acquire(self) -> "DirLock":
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = lock_owner(self.path.parent)
                if owner is not None:
                    raise UserError(f"{self.path.parent} is being written by pid {owner['pid']} on "
                                    f"{owner.get('host')} (lock {self.path}); wait for it, or use another --out")
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
        if isinstance(owner, dict) and isinstance(owner.get("pid"), int) and (
                owner.get("host") != socket.gethostname() or pid_alive(owner["pid"])):
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
