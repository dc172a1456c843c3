"""Keras on TensorFlow as this backend uses it: selects Keras' TensorFlow backend and quiets TF logging before importing
keras (import keras and tf from here), sets TF's threads and determinism, and reports versions and settings."""

import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import warnings  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from experiments.threads import seen_settings  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"keras was imported with the {keras.backend.backend()!r} backend before backends.keras; "
        "the Keras backend of this suite needs KERAS_BACKEND=tensorflow in a fresh process"
    )


def exact(value: float) -> np.float64:
    """A Python float as a NumPy float64 scalar, for the Keras APIs that cast their scalar arguments.

    On TF, Keras casts a Python float by converting it to a float32 tensor first:
    keras.ops.cast(0.1, "float64") and tf.cast(0.1, tf.float64) give 0.10000000149011612, so
    keras.initializers.Constant(0.1) fills float64 variables with float32(0.1), and
    keras.random.uniform / RandomUniform draw between float32-rounded bounds. A NumPy float64
    scalar keeps its dtype through the conversion (and rounds correctly when cast to float32).
    Plain TF arithmetic (`0.1 * x`) converts Python floats to x's dtype directly and needs no help.
    """
    return np.float64(value)


def configure_threads(threads: int) -> dict[str, object]:
    """Set TF's intra- and inter-op thread pools and op determinism; returns what is in effect.

    The pools can only be sized before TF's runtime starts; a later Trainer in the same process
    asking for other sizes gets a warning and the sizes already in effect (reported here).
    TF32 is turned off too (it only exists on Ampere+ GPUs, where TF enables it by default).
    """
    applied = True
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as error:  # "cannot be modified after initialization"
        applied = False
        warnings.warn(f"TensorFlow thread pools were already initialised ({error}); keeping the sizes in effect")
    tf.config.experimental.enable_op_determinism()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    return {
        "threads_requested": threads,
        "threads_applied": applied,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "op_determinism": True,
        "tensor_float_32": tf.config.experimental.tensor_float_32_execution_enabled(),
    }


def versions() -> dict[str, str]:
    return {"keras": keras.__version__, "tensorflow": tf.__version__}


def settings(threads: dict[str, object], device: str, dtype: str, jit_compile: bool) -> dict[str, object]:
    """configure_threads' report, the device and dtype the variables live in, and how the steps are compiled;
    thread_environment is the worker's OpenMP/MKL environment as this process sees it (TF's own pools do not read
    it; listed so every backend's record shows what its process ran with)."""
    return {
        **threads,
        "thread_environment": seen_settings(),
        "device": device,
        "dtype": dtype,
        "compiled": "tf.function epoch loop (tf.while_loop) calling a tf.function step, each also in a variant taking "
                    "injected noise; logits, per-sample losses and layer outputs one tf.function each; "
                    "loss_and_gradients compiled as the step is",
        "jit_compile": jit_compile,
    }


__all__ = ["configure_threads", "exact", "keras", "settings", "tf", "versions"]
