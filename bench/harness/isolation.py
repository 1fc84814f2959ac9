"""Run measurements where a dead CUDA context, an OOM or a hard crash cannot take the caller down.

A persistent worker process (spawn start method: a fresh CUDA context, no forked state) serves
calls `function, kwargs -> value`: the function object itself crosses the pipe (pickled by its
module and name, so it must be a module-level function), and so do its arguments and its value.
Every runner follows the `Worker` protocol. The parent turns whatever happens into an `Outcome`:

- `ok`: the function returned (its value must pickle);
- `oom`: it raised an out-of-memory error (the worker empties its cache and keeps serving);
- `crashed`: it raised a device-dead error (FA3's CUTLASS error, a CUDA error, the reference
  backend's mirror of it) or the process died (segfault, os._exit, kill); the worker is replaced;
- `timeout`: the call ran past the worker's `call_timeout_s` (a hung kernel or worker); the worker
  is killed and the next call starts a fresh one;
- `error`: any other exception (a bug or bad input); the worker keeps serving.

A host `MemoryError` counts as `oom`, like the device's out-of-memory error.

The error text is the tail of the traceback, or of the worker's stderr when it died.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

ERROR_TAIL_CHARS = 1500
DEFAULT_CALL_TIMEOUT_S = 600.0     # one call: a probe, or every timed round of a configuration


@dataclass
class Outcome:
    status: str                   # ok | oom | crashed | timeout | error
    value: Any = None
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def error_line(self) -> str:
        """The last non-blank line of the error (the exception message, for a traceback)."""
        lines = [ln for ln in (self.error or "").splitlines() if ln.strip()]
        return lines[-1] if lines else ""


def tail(text: str, chars: int = ERROR_TAIL_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= chars else "..." + text[-chars:]


def classify_exception(exc: BaseException) -> str:
    """oom / crashed / error for an exception raised by a measured call."""
    from prefixlm_attn.backends.base import is_device_dead_error
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower() \
            or type(exc).__name__ == "OutOfMemoryError":
        return "oom"
    if is_device_dead_error(exc):
        return "crashed"
    return "error"


class Worker(Protocol):
    """Runs `fn(**kwargs)` somewhere a crash cannot reach the caller; never raises for what `fn` does."""

    def call(self, fn: Callable[..., Any], /, **kwargs: Any) -> Outcome: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Worker": ...

    def __exit__(self, *exc: object) -> None: ...


def _serve(conn, stderr_path: str, env: dict[str, str]) -> None:
    """Worker loop: stderr goes to a file the parent reads when the worker dies.

    SIGINT is ignored (the parent owns Ctrl-C: it says what was kept and kills its workers); it was
    blocked from the worker's start, so a Ctrl-C during its imports is dropped, not a traceback.
    SIGTERM keeps its default: the worker ends quietly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 2)
    os.environ.update(env)
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        fn, kwargs = message
        try:
            value = fn(**kwargs)
            conn.send(("ok", value, None))
        except BaseException as exc:  # everything goes back to the parent as data
            status = classify_exception(exc)
            conn.send((status, None, tail(traceback.format_exc())))
            if status == "oom":
                _empty_cuda_cache()
            if status == "crashed":
                return  # the context is unusable: the parent starts a fresh worker


def _empty_cuda_cache() -> None:
    try:
        import torch
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass


class IsolatedWorker:
    """A replaceable worker process; `call` never raises for what happens inside the worker."""

    def __init__(self, env: Optional[dict[str, str]] = None, call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S):
        self.env = dict(env or {})
        self.call_timeout_s = call_timeout_s
        self._ctx = mp.get_context("spawn")
        self._proc = None
        self._conn = None
        self._busy = False                # a call is in flight (or was cut by an interrupt)
        self._killed = False
        self._stderr_path: Optional[Path] = None

    def _start(self) -> None:
        fd, name = tempfile.mkstemp(prefix="prefixbench-worker-", suffix=".stderr")
        os.close(fd)
        self._stderr_path = Path(name)
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_serve, args=(child, name, self.env), daemon=True)
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})    # inherited by the child
        try:
            self._proc.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        child.close()
        self._conn = parent

    def _stderr_tail(self) -> str:
        try:
            return tail(self._stderr_path.read_text(errors="replace")) if self._stderr_path else ""
        except OSError:
            return ""

    def call(self, fn: Callable[..., Any], /, **kwargs: Any) -> Outcome:
        if self._killed:
            return Outcome("error", error="the worker was closed")
        if self._proc is None or not self._proc.is_alive():
            self._start()
        deadline = time.monotonic() + self.call_timeout_s
        self._busy = True                 # until the call returns: an interrupted one leaves it set
        try:
            self._conn.send((fn, kwargs))
            while not self._conn.poll(0.05):
                if not self._proc.is_alive():
                    raise EOFError
                if time.monotonic() > deadline:
                    err = self._stderr_tail()
                    self._reap()
                    return Outcome("timeout", error=tail(f"{getattr(fn, '__name__', fn)} ran past the call "
                                                         f"timeout ({self.call_timeout_s:g} s); the worker was "
                                                         f"killed and is restarted. {err}"))
            status, value, error = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            self._proc.join(timeout=5)
            code = self._proc.exitcode
            err = self._stderr_tail()
            self._reap()
            return Outcome("crashed", error=tail(f"worker died (exit code {code}). {err}"))
        self._busy = False
        if status == "crashed":
            self._proc.join(timeout=10)
            self._reap()
        return Outcome(status, value, error)

    def _reap(self) -> None:
        self._busy = False
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout=5)
        self._proc = None
        if self._stderr_path is not None:
            self._stderr_path.unlink(missing_ok=True)
            self._stderr_path = None

    def kill(self) -> None:
        """End the worker now, from any thread (a spare still warming up when the run ends)."""
        self._killed = True
        proc = self._proc
        if proc is not None and proc.is_alive():
            proc.kill()

    def close(self) -> None:
        if self._proc is not None:
            try:
                if self._proc.is_alive() and not self._busy:
                    self._conn.send(None)
                    self._proc.join(timeout=5)
            except (BrokenPipeError, OSError):
                pass
            if self._proc.is_alive():
                self._proc.kill()
            self._proc = None
        if self._stderr_path is not None:
            self._stderr_path.unlink(missing_ok=True)

    def __enter__(self) -> "IsolatedWorker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcess:
    """Same interface without a process (for `--isolation none`): fast, but a real CUDA crash is fatal
    and a hung call cannot be timed out.

    After a crash it forgets the reference backend's mirrored dead context, the in-process stand-in
    for the fresh worker `IsolatedWorker` would start.
    """

    def call(self, fn: Callable[..., Any], /, **kwargs: Any) -> Outcome:
        try:
            return Outcome("ok", fn(**kwargs))
        except Exception as exc:          # MemoryError included: recorded as oom
            status = classify_exception(exc)
            if status == "crashed":
                from prefixlm_attn.backends.reference import reset_dead_context
                reset_dead_context()
            return Outcome(status, error=tail(traceback.format_exc()))

    def close(self) -> None:
        pass

    def __enter__(self) -> "InProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def warm_device(device: str = "cpu") -> bool:
    """A fresh worker's start-up paid ahead: torch imported and, on CUDA, the context created."""
    import torch
    torch.zeros(1, device=device)
    return True


class WithSpare:
    """An `IsolatedWorker` with one spare kept warm beside it, so a crash (or a timeout) swaps in a
    started worker at once instead of paying a cold start (imports, CUDA context, kernel load).

    The spare is started and warmed (`warm_device`) in a thread while the current worker runs; after a
    swap the next spare starts the same way. It serves the same `Worker` protocol.
    """

    def __init__(self, env: Optional[dict[str, str]] = None, call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
                 device: str = "cpu"):
        import threading
        self._make = lambda: IsolatedWorker(env=env, call_timeout_s=call_timeout_s)  # noqa: E731
        self._device = device
        self._threading = threading
        self.current = self._make()
        self.swaps = 0
        self._spare: Optional[IsolatedWorker] = None
        self._thread: Optional[Any] = None
        self._start_spare()

    def _start_spare(self) -> None:
        spare = self._make()

        def warm() -> None:
            spare.call(warm_device, device=self._device)

        self._spare = spare
        self._thread = self._threading.Thread(target=warm, daemon=True)
        self._thread.start()

    def call(self, fn: Callable[..., Any], /, **kwargs: Any) -> Outcome:
        result = self.current.call(fn, **kwargs)
        if result.status in ("crashed", "timeout"):
            self.current.close()
            self._thread.join()
            self.current, self._spare = self._spare, None
            self.swaps += 1
            self._start_spare()
        return result

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self._spare is not None:
            self._spare.close()
        self.current.close()

    def __enter__(self) -> "WithSpare":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
