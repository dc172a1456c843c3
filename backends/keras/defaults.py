"""Keras' own defaults for the catalog's parameters, read from the installed Keras (so a version change shows up).

`python -m backends.keras.defaults` prints the rows as JSON. The suite never uses these
defaults (every value comes from the spec); they are listed to show what a Keras user would
get without pinning, beside the other backends' rows.
"""

import inspect
import json
import re

from backends.keras.framework import keras

# (catalog entry, catalog parameter, Keras symbol, the symbol's own parameter name[, what the value means]),
# read by inspect.signature.
SIGNATURE_DEFAULTS = (
    # Activations.
    ("leaky_relu", "negative_slope", "keras.layers.LeakyReLU", "negative_slope"),
    ("leaky_relu", "negative_slope", "keras.activations.leaky_relu", "negative_slope"),
    ("leaky_relu", "negative_slope", "keras.ops.leaky_relu", "negative_slope"),
    ("prelu", "initial_value", "keras.layers.PReLU", "alpha_initializer"),
    ("prelu", "per_channel", "keras.layers.PReLU", "shared_axes", "None: one alpha per element of input_shape[1:]"),
    ("elu", "alpha", "keras.layers.ELU", "alpha"),
    ("elu", "alpha", "keras.activations.elu", "alpha"),
    ("gelu", "approximate", "keras.activations.gelu", "approximate", "False: exact erf, also Activation('gelu')"),
    ("gelu", "approximate", "keras.ops.gelu", "approximate", "True: tanh"),
    # Layers.
    ("dense", "kernel_init", "keras.layers.Dense", "kernel_initializer"),
    ("dense", "bias_init", "keras.layers.Dense", "bias_initializer"),
    ("conv2d", "kernel_init", "keras.layers.Conv2D", "kernel_initializer"),
    ("conv2d", "bias_init", "keras.layers.Conv2D", "bias_initializer"),
    ("conv2d", "padding", "keras.layers.Conv2D", "padding"),
    ("max_pool", "size", "keras.layers.MaxPooling2D", "pool_size"),
    ("max_pool", "stride", "keras.layers.MaxPooling2D", "strides", "None: the pool size"),
    ("max_pool", "padding", "keras.layers.MaxPooling2D", "padding"),
    ("batch_norm", "momentum", "keras.layers.BatchNormalization", "momentum"),
    ("batch_norm", "epsilon", "keras.layers.BatchNormalization", "epsilon"),
    # Initialisers.
    ("normal", "mean", "keras.initializers.RandomNormal", "mean"),
    ("normal", "stddev", "keras.initializers.RandomNormal", "stddev"),
    ("truncated_normal", "mean", "keras.initializers.TruncatedNormal", "mean"),
    ("truncated_normal", "stddev", "keras.initializers.TruncatedNormal", "stddev"),
    ("uniform", "minval", "keras.initializers.RandomUniform", "minval"),
    ("uniform", "maxval", "keras.initializers.RandomUniform", "maxval"),
    ("variance_scaling", "scale", "keras.initializers.VarianceScaling", "scale"),
    ("variance_scaling", "mode", "keras.initializers.VarianceScaling", "mode"),
    ("variance_scaling", "distribution_kind", "keras.initializers.VarianceScaling", "distribution"),
    # Losses.
    ("categorical_crossentropy", "from_logits", "keras.losses.CategoricalCrossentropy", "from_logits"),
    ("categorical_crossentropy", "label_smoothing", "keras.losses.CategoricalCrossentropy", "label_smoothing"),
    ("binary_crossentropy", "from_logits", "keras.losses.BinaryCrossentropy", "from_logits"),
    ("binary_crossentropy", "label_smoothing", "keras.losses.BinaryCrossentropy", "label_smoothing"),
)

# Catalog optimizer -> (Keras class, {catalog parameter: Keras parameter}); clip_global_norm is global_clipnorm in all.
OPTIMIZERS = {
    "sgd": ("keras.optimizers.SGD", {"momentum": "momentum", "nesterov": "nesterov"}),
    "momentum": ("keras.optimizers.SGD", {"momentum": "momentum"}),
    "nesterov": ("keras.optimizers.SGD", {"momentum": "momentum"}),
    "adagrad": ("keras.optimizers.Adagrad", {"initial_accumulator_value": "initial_accumulator_value", "epsilon": "epsilon"}),
    "rmsprop": ("keras.optimizers.RMSprop", {"rho": "rho", "epsilon": "epsilon", "momentum": "momentum", "centered": "centered"}),
    "adam": ("keras.optimizers.Adam", {"beta_1": "beta_1", "beta_2": "beta_2", "epsilon": "epsilon"}),
    "adamw": ("keras.optimizers.AdamW", {"beta_1": "beta_1", "beta_2": "beta_2", "epsilon": "epsilon", "weight_decay": "weight_decay"}),
    "adadelta": ("keras.optimizers.Adadelta", {"rho": "rho", "epsilon": "epsilon"}),
    "adamax": ("keras.optimizers.Adamax", {"beta_1": "beta_1", "beta_2": "beta_2", "epsilon": "epsilon"}),
    "nadam": ("keras.optimizers.Nadam", {"beta_1": "beta_1", "beta_2": "beta_2", "epsilon": "epsilon"}),
}

# Keras' Nadam has no momentum_decay: its update hard-codes 0.96 ** (iterations + 1), i.e. the catalog's psi = 1.
NADAM_SCHEDULE = re.compile(r"power\(\s*0\.96\s*,\s*ops\.cast\(\s*self\.iterations\s*\+\s*1")


def resolve(path: str):
    """keras.layers.Dense -> the object, from the imported keras."""
    target = keras
    for part in path.split(".")[1:]:
        target = getattr(target, part)
    return target


def plain(value):
    """A JSON value: tuples become lists; anything else non-JSON its repr."""
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def signature_default(path: str, parameter: str):
    default = inspect.signature(resolve(path)).parameters[parameter].default
    if default is inspect.Parameter.empty:
        raise KeyError(f"{path}({parameter}) has no default")
    return plain(default)


def row(entry: str, parameter: str, value, source: str) -> dict:
    return {"entry": entry, "parameter": parameter, "value": value, "source": source}


def nadam_momentum_decay() -> dict:
    """psi = 1 when Keras' Nadam source still has its hard-coded 0.96 ** (t) schedule, else None (look again)."""
    source = inspect.getsource(resolve("keras.optimizers.Nadam"))
    found = NADAM_SCHEDULE.search(source) is not None
    note = "hard-coded 0.96 ** (iterations + 1), no parameter" if found else "0.96 ** (iterations + 1) not found"
    return row("nadam", "momentum_decay", 1.0 if found else None, f"keras.optimizers.Nadam source ({note})")


def framework_defaults() -> list[dict]:
    """Rows {"entry", "parameter", "value", "source"}: Keras' default for a catalog parameter, and where it was read."""
    rows = []
    for entry, parameter, path, name, *note in SIGNATURE_DEFAULTS:
        source = f"{path}({name})" + (f": {note[0]}" if note else "")
        rows.append(row(entry, parameter, signature_default(path, name), source))
    for entry, (path, parameters) in OPTIMIZERS.items():
        for parameter, name in {"learning_rate": "learning_rate", **parameters, "clip_global_norm": "global_clipnorm"}.items():
            rows.append(row(entry, parameter, signature_default(path, name), f"{path}({name})"))
    rows.append(nadam_momentum_decay())
    rows.append(row("spec", "dtype", keras.config.floatx(), "keras.config.floatx()"))
    return rows


if __name__ == "__main__":
    print(json.dumps(framework_defaults(), indent=1))
