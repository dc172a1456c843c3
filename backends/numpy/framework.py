"""NumPy as the NumPy backend uses it: versions and settings read back from this process (no process-wide setting is
changed; every array gets spec.dtype explicitly)."""

import platform

import numpy as np

from experiments.threads import seen_settings


def versions() -> dict[str, str]:
    return {"numpy": np.__version__}


def settings(dtype: np.dtype) -> dict[str, object]:
    """The BLAS NumPy was built with and the thread environment it reads (its GEMMs honour OMP/OPENBLAS threads)."""
    blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
    return {"dtype": np.dtype(dtype).name, "device": "cpu", "python": platform.python_version(),
            "blas": f"{blas.get('name', 'unknown')} {blas.get('version', '')}".strip(),
            "thread_environment": seen_settings()}
