"""Selects Keras' TensorFlow backend and quiets TF logging before importing keras; import keras and tf from here."""

import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"keras was imported with the {keras.backend.backend()!r} backend before backends.keras; "
        "the Keras backend of this suite needs KERAS_BACKEND=tensorflow in a fresh process"
    )

__all__ = ["keras", "tf"]
