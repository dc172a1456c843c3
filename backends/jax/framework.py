"""JAX as the JAX backend uses it, configured once: import jax, flax.linen and optax from here.

XLA reads XLA_FLAGS once, when its backend starts, so deterministic GPU kernels are asked for before jax is
imported (no effect if some other module already ran a JAX computation). Process-wide: x64 (every array still gets
an explicit dtype, so float32 trainers stay float32) and full-precision matmuls and convolutions on every device.
"""

import os

if "xla_gpu_deterministic_ops" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_gpu_deterministic_ops=true".strip()

from importlib.metadata import version  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from flax import linen as nn  # noqa: E402
from jax import lax  # noqa: E402

from experiments.threads import seen_settings  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_default_matmul_precision", "highest")


def versions() -> dict[str, str]:
    return {name: version(name) for name in ("jax", "jaxlib", "flax", "optax")}


def settings(threads: int, dtype, scan: bool) -> dict[str, object]:
    """Threads cannot be set here: XLA's CPU thread pool is fixed when its backend starts.

    thread_environment is the worker's OpenMP/MKL environment as this process sees it; XLA's CPU runtime uses its
    own thread pool and does not read it (listed so every backend's record shows what its process ran with).
    """
    device = jax.devices()[0]
    return {
        "threads_requested": threads,
        "threads_applied": "not settable after XLA starts; see xla_flags and cpu_count",
        "cpu_count": os.cpu_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "thread_environment": seen_settings(),
        "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
        "jax_enable_x64": bool(jax.config.jax_enable_x64),
        "layer_precision": "HIGHEST",
        "platform": device.platform,
        "device": device.device_kind,
        "dtype": dtype.name,
        "batch_norm_variance": "two-pass (use_fast_variance=False)",
        "noise_keys": f"{jax.config.jax_default_prng_impl}: per step fold_in(split(key(seed))[1], step), "
                      "split into the dropout and rrelu keys (unless noise is injected)",
        "train_loop": "lax.scan per epoch" if scan else "one jitted step per batch (XLA:CPU convolutions)",
    }


__all__ = ["jax", "jnp", "lax", "nn", "optax", "settings", "versions"]
