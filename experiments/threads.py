"""The environment every backend worker process starts with: thread counts and the math libraries' settings.

Framework-neutral (no framework import): these variables must be in place before a worker imports
its framework, so the runner passes them to the worker process it starts.
"""

import os


def worker_environment(threads: int) -> dict[str, str]:
    """The parent's environment with the thread settings of a worker that runs `threads` threads."""
    return {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
