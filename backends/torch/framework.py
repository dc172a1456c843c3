"""torch as the torch backend uses it: the process-wide settings a Trainer applies, and versions and settings read
back from this process. Tensors get their dtype explicitly (DTYPES); the default dtype is never changed."""

import ctypes
import re

import numpy as np
import torch

from experiments.threads import seen_settings

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def tensor_dtype(dtype) -> torch.dtype:
    """The torch dtype of a NumPy dtype or its name."""
    return DTYPES[np.dtype(dtype).name]


def configure(threads: int, seed: int) -> None:
    """Process-wide: `threads` intra-op threads, deterministic algorithms (fill_uninitialized_memory, their default,
    pinned on), float32 matmul precision "highest" and the global RNG seeded (the trainer draws from its own)."""
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    torch.set_float32_matmul_precision("highest")
    torch.manual_seed(seed)


def versions() -> dict[str, str]:
    return {"torch": torch.__version__}


def settings(threads: int, dtype) -> dict[str, object]:
    """What decides run-to-run reproducibility here, read back from this process.

    `deterministic` is torch's flag: it covers torch's own ops only. MKL GEMMs are reproducible
    only with a fixed thread count, dynamic threads off and MKL's CNR mode (MKL_CBWR), which
    come from the environment the worker was started with (experiments.threads), shown as
    seen here; MKL's CNR and dynamic states cannot be queried, so the variables are the record.
    omp_dynamic is libgomp's own answer (None where the symbol is not visible).
    """
    libc = ctypes.CDLL(None)
    mkl = re.search(r"mkl_get_max_threads\(\) : (\d+)", torch.__config__.parallel_info())
    return {
        "threads": torch.get_num_threads(),
        "threads_requested": threads,
        "interop_threads": torch.get_num_interop_threads(),
        "mkl_max_threads": int(mkl.group(1)) if mkl else None,
        "omp_dynamic": bool(libc.omp_get_dynamic()) if hasattr(libc, "omp_get_dynamic") else None,
        "thread_environment": seen_settings(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "fill_uninitialized_memory": bool(torch.utils.deterministic.fill_uninitialized_memory),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "device": "cpu",
        "dtype": np.dtype(dtype).name,
    }
