"""Selects Keras' TensorFlow backend and quiets TF logging before importing keras; import keras and tf from here."""

import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

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


__all__ = ["exact", "keras", "tf"]
