"""Canonical weight names <-> the Flax variable tree (Flax layouts already are the canonical ones)."""

from typing import Any

import numpy as np

from backends.base import check_names_and_shapes
from experiments.spec.plan import ParameterInfo

# Flax keeps a dense kernel as (in, out), a conv kernel as (kh, kw, in, out) and flattens NHWC
# in (H, W, C) order, so no tensor is transposed or permuted. Only names differ: BatchNorm's
# offset is Flax's `bias`, its running variance `var`, and running statistics live in the
# `batch_stats` collection, not in `params`. PReLU's alpha is already canonical (our own module).
_LOCATION = {  # canonical parameter -> (Flax collection, Flax variable name)
    "kernel": ("params", "kernel"),
    "bias": ("params", "bias"),
    "scale": ("params", "scale"),
    "offset": ("params", "bias"),
    "mean": ("batch_stats", "mean"),
    "variance": ("batch_stats", "var"),
    "alpha": ("params", "alpha"),  # prelu (ActivationLayer), (1,) or (C,) as in the plan
}


def location(name: str) -> tuple[str, str, str]:
    """(collection, module, variable) of a canonical name such as `batch_norm_0/variance`."""
    module, parameter = name.split("/")
    collection, variable = _LOCATION[parameter]
    return collection, module, variable


def check_layout(variables: dict[str, Any], info: dict[str, ParameterInfo], dtype: np.dtype) -> None:
    """Raise unless Flax created exactly the plan's parameters, with canonical shapes and dtype."""
    found = {
        (collection, module, variable)
        for collection, modules in variables.items()
        for module, leaves in modules.items()
        for variable in leaves
    }
    expected = {location(name) for name in info}
    if found != expected:
        raise ValueError(f"Flax variables {sorted(found - expected)} unexpected, {sorted(expected - found)} missing")
    for name, parameter in info.items():
        collection, module, variable = location(name)
        value = variables[collection][module][variable]
        if tuple(value.shape) != parameter.shape or value.dtype != dtype:
            raise ValueError(f"{name}: Flax holds {value.dtype}{tuple(value.shape)}, expected {dtype}{parameter.shape}")
        if (collection == "params") != parameter.trainable:
            raise ValueError(f"{name}: trainable={parameter.trainable} but Flax keeps it in {collection!r}")


def to_canonical(variables: dict[str, Any], info: dict[str, ParameterInfo]) -> dict[str, np.ndarray]:
    """Copies of every parameter and buffer as NumPy arrays, by canonical name, in plan order."""
    out = {}
    for name in info:
        collection, module, variable = location(name)
        out[name] = np.array(variables[collection][module][variable], copy=True)
    return out


def from_canonical(weights: dict[str, np.ndarray], info: dict[str, ParameterInfo], dtype: np.dtype, what: str = "set_weights") -> dict[str, Any]:
    """The Flax variable tree (NumPy copies cast to dtype) of canonical weights, checked first (backends.base's one
    check, in the words of `what`, the method that was called)."""
    check_names_and_shapes(what, weights, {name: item.shape for name, item in info.items()})
    variables: dict[str, Any] = {}
    for name in info:
        collection, module, variable = location(name)
        variables.setdefault(collection, {}).setdefault(module, {})[variable] = np.array(weights[name], dtype=dtype, copy=True)
    return variables
