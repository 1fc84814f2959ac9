"""Functions the isolation tests run inside a worker process."""
import os


def add(a: int, b: int) -> int:
    return a + b


def die_hard() -> None:
    os.write(2, b"about to die\n")
    os._exit(7)


def raise_value_error() -> None:
    raise ValueError("bad thing")


def fake_cuda_crash() -> None:
    from prefixlm_attn.backends.base import KernelCrash, CUTLASS_BWD_ERROR
    raise KernelCrash(CUTLASS_BWD_ERROR)


def fake_oom() -> None:
    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")


def pid() -> int:
    return os.getpid()


def hang(seconds: float) -> None:
    import time
    time.sleep(seconds)


def host_oom() -> None:
    raise MemoryError()
