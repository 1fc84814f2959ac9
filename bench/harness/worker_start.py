"""What the forkserver that forks every worker imports once: torch, and SIGINT blocked.

Imported in the server process only (`isolation.worker_context`). Forked workers inherit torch
already imported (a worker starts in a fraction of a second instead of re-importing torch, which
is what made every expected crash cost a cold start) and inherit SIGINT blocked, so a Ctrl-C that
lands before the worker's loop has set SIGINT to ignored is dropped, not a traceback. Importing torch
does not initialise CUDA, so each forked worker still opens its own, fresh CUDA context.
"""
import signal

signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

import torch  # noqa: E402,F401 - imported here so that every forked worker has it
