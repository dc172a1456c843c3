"""Canonical weights <-> torch tensors (layouts, flatten order) and the seeded initial draw.

Layouts (canonical <- torch):
- dense kernel (in, out) <- Linear.weight (out, in) transposed;
- the first dense after a flatten: torch flattens (C, H, W), the canonical kernel rows are in
  (H, W, C) order: W_torch.reshape(out, C, H, W).permute(2, 3, 1, 0).reshape(H*W*C, out);
- conv kernel (kh, kw, in, out) <- Conv2d.weight (out, in, kh, kw).permute(2, 3, 1, 0);
- batch norm scale/offset/mean/variance <- weight/bias/running_mean/running_var;
- prelu alpha (1,) or (C,) <- PReLU.weight as is (its channel axis is dim 1, the canonical last axis).
"""

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from experiments.spec import plan as P

Layout = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Slot:
    """One canonical parameter or buffer: its name, shape, torch tensor and the two layout maps."""

    name: str
    shape: tuple[int, ...]
    tensor: torch.Tensor
    to_canonical: Layout
    from_canonical: Layout


def _same(t: torch.Tensor) -> torch.Tensor:
    return t


def _dense_layouts(units: int, flattened: tuple[int, int, int] | None) -> tuple[Layout, Layout]:
    """Dense kernel maps; `flattened` is the (H, W, C) input of a preceding flatten, else None."""
    if flattened is None:
        return (lambda w: w.t()), (lambda k: k.t())
    h, w_, c = flattened
    to_canonical = lambda w: w.reshape(units, c, h, w_).permute(2, 3, 1, 0).reshape(h * w_ * c, units)  # noqa: E731
    from_canonical = lambda k: k.reshape(h, w_, c, units).permute(3, 2, 0, 1).reshape(units, c * h * w_)  # noqa: E731
    return to_canonical, from_canonical


def weight_slots(plan: tuple[P.Layer, ...], modules) -> list[Slot]:
    """Every canonical parameter/buffer of the plan, bound to the module (by plan layer name) holding it."""
    slots: list[Slot] = []
    flattened = None
    for layer in plan:
        module = modules[layer.name]
        if isinstance(layer, P.Flatten):
            shape = layer.input_shape
            flattened = (shape[0], shape[1], shape[2]) if len(shape) == 3 else None
        elif isinstance(layer, P.Dense):
            to_c, from_c = _dense_layouts(layer.units, flattened)
            flattened = None
            slots.append(Slot(f"{layer.name}/kernel", (layer.input_shape[-1], layer.units), module.weight, to_c, from_c))
            slots.append(Slot(f"{layer.name}/bias", (layer.units,), module.bias, _same, _same))
        elif isinstance(layer, P.Conv2D):
            shape = (layer.kernel_size, layer.kernel_size, layer.input_shape[-1], layer.filters)
            slots.append(Slot(f"{layer.name}/kernel", shape, module.weight,
                              lambda w: w.permute(2, 3, 1, 0), lambda k: k.permute(3, 2, 0, 1)))
            slots.append(Slot(f"{layer.name}/bias", (layer.filters,), module.bias, _same, _same))
        elif isinstance(layer, P.Activation) and layer.activation.has_parameters:  # prelu
            shape = (layer.input_shape[-1],) if layer.activation.per_channel else (1,)
            slots.append(Slot(f"{layer.name}/alpha", shape, module.weight, _same, _same))
        elif isinstance(layer, P.BatchNormalization):
            features = (layer.input_shape[-1],)
            for key, tensor in (("scale", module.weight), ("offset", module.bias),
                                ("mean", module.running_mean), ("variance", module.running_var)):
                slots.append(Slot(f"{layer.name}/{key}", features, tensor, _same, _same))
    return slots


def get_weights(slots: list[Slot]) -> dict[str, np.ndarray]:
    """Fresh NumPy copies of every slot in canonical layout."""
    with torch.no_grad():
        return {s.name: s.to_canonical(s.tensor.detach()).contiguous().numpy().copy() for s in slots}


def set_weights(slots: list[Slot], weights: dict[str, np.ndarray], dtype: torch.dtype) -> None:
    """Copy canonical arrays (names and shapes already checked) into the slots, all converted before any copy."""
    tensors = {s.name: torch.tensor(np.asarray(weights[s.name]), dtype=dtype) for s in slots}
    with torch.no_grad():
        for s in slots:
            s.tensor.copy_(s.from_canonical(tensors[s.name]))


def draw(shape: tuple[int, ...], distribution, dtype: torch.dtype, generator: torch.Generator) -> torch.Tensor:
    """One tensor drawn from a catalog Distribution with the given Generator; truncated_normal is trunc_normal_
    (inverse-CDF sampling) with its absolute bounds a and b set to the catalog's cut."""
    t = torch.empty(shape, dtype=dtype)
    a, b = distribution.a, distribution.b
    if distribution.kind == "constant":
        return t.fill_(a)
    if distribution.kind == "uniform":
        return t.uniform_(a, b, generator=generator)
    if distribution.kind == "normal":
        return t.normal_(a, b, generator=generator)
    if distribution.kind == "truncated_normal":
        return torch.nn.init.trunc_normal_(t, mean=a, std=b, a=a - 2.0 * b, b=a + 2.0 * b, generator=generator)
    raise ValueError(f"the torch backend cannot draw a {distribution.kind!r} distribution")


def initial_weights(plan: tuple[P.Layer, ...], dtype: torch.dtype, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Canonical initial values (backends.base's rule), drawn in plan order (kernel then bias) in canonical layout."""
    info = P.parameter_info(plan)
    layers = {layer.name: layer for layer in plan}
    values: dict[str, torch.Tensor] = {}
    for name, parameter in info.items():
        layer_name, key = name.split("/")
        layer = layers[layer_name]
        if isinstance(layer, (P.Dense, P.Conv2D)):
            entry = layer.kernel_init if key == "kernel" else layer.bias_init
            fans = P.fans(info[f"{layer_name}/kernel"].shape)
            values[name] = draw(parameter.shape, entry.distribution(*fans), dtype, generator)
        elif isinstance(layer, P.Activation):  # prelu alpha
            values[name] = torch.full(parameter.shape, layer.activation.initial_value, dtype=dtype)
        else:
            fill = 1.0 if key in ("scale", "variance") else 0.0
            values[name] = torch.full(parameter.shape, fill, dtype=dtype)
    return values


def _native_kernel_init(t: torch.Tensor, entry, generator: torch.Generator) -> torch.Tensor:
    """torch.nn.init's function named by the entry, on a kernel in torch's layout (its fans: (out, in[, kh, kw]),
    the catalog's fans). glorot/he/lecun "normal" are torch's untruncated normals (xavier_normal_, kaiming_normal_),
    where the catalog (as Keras) truncates; torch_default is kaiming_uniform_(a=sqrt(5)), Linear's own."""
    init, name = torch.nn.init, entry.name
    if name == "zeros":
        return init.zeros_(t)
    if name == "constant":
        return init.constant_(t, entry.value)
    if name == "normal":
        return init.normal_(t, mean=entry.mean, std=entry.stddev, generator=generator)
    if name == "truncated_normal":
        return init.trunc_normal_(t, mean=entry.mean, std=entry.stddev, a=entry.mean - 2.0 * entry.stddev,
                                  b=entry.mean + 2.0 * entry.stddev, generator=generator)
    if name == "uniform":
        return init.uniform_(t, a=entry.minval, b=entry.maxval, generator=generator)
    if name == "glorot_uniform":
        return init.xavier_uniform_(t, generator=generator)
    if name == "glorot_normal":
        return init.xavier_normal_(t, generator=generator)
    if name == "he_uniform":
        return init.kaiming_uniform_(t, nonlinearity="relu", generator=generator)
    if name == "he_normal":
        return init.kaiming_normal_(t, nonlinearity="relu", generator=generator)
    if name == "lecun_uniform":
        return init.kaiming_uniform_(t, nonlinearity="linear", generator=generator)
    if name == "lecun_normal":
        return init.kaiming_normal_(t, nonlinearity="linear", generator=generator)
    if name == "torch_default":
        return init.kaiming_uniform_(t, a=math.sqrt(5.0), generator=generator)
    raise ValueError(f"torch.nn.init has no initializer for {name!r}")


NATIVE_INITIALIZERS = ("zeros", "constant", "normal", "truncated_normal", "uniform", "glorot_uniform", "glorot_normal",
                       "he_uniform", "he_normal", "lecun_uniform", "lecun_normal", "torch_default")
"""Initializer entries torch.nn.init names; variance_scaling (any scale and mode) has no built-in."""

_FAN_FREE = ("zeros", "constant", "normal", "truncated_normal", "uniform")


def native_initial_weights(plan: tuple[P.Layer, ...], slots: list[Slot], dtype: torch.dtype, generator: torch.Generator,
                           native) -> dict[str, torch.Tensor]:
    """implementation = "native": initial_weights with every dense/conv kernel and bias whose entry torch.nn.init names
    (NATIVE_INITIALIZERS, and `native("initializer", name, available=...)` agrees) drawn by it in torch's layout, in
    the same order and from the same generator; the rest as initial_weights. A bias has no fans of its own in torch:
    a fan-based entry draws it with init.uniform_/normal_/trunc_normal_ on the catalog's distribution for the layer's
    kernel fans (what Linear.reset_parameters does for its bias)."""
    info = P.parameter_info(plan)
    layers = {layer.name: layer for layer in plan}
    by_name = {slot.name: slot for slot in slots}
    values: dict[str, torch.Tensor] = {}
    for name, parameter in info.items():
        layer_name, key = name.split("/")
        layer = layers[layer_name]
        if isinstance(layer, P.Activation):  # prelu alpha
            values[name] = torch.full(parameter.shape, layer.activation.initial_value, dtype=dtype)
            continue
        if not isinstance(layer, (P.Dense, P.Conv2D)):  # batch norm
            values[name] = torch.full(parameter.shape, 1.0 if key in ("scale", "variance") else 0.0, dtype=dtype)
            continue
        entry = layer.kernel_init if key == "kernel" else layer.bias_init
        distribution = entry.distribution(*P.fans(info[f"{layer_name}/kernel"].shape))
        if not native("initializer", entry.name, available=entry.name in NATIVE_INITIALIZERS):
            values[name] = draw(parameter.shape, distribution, dtype, generator)
        elif key == "kernel" or entry.name in _FAN_FREE:
            slot = by_name[name]
            values[name] = slot.to_canonical(_native_kernel_init(torch.empty(slot.tensor.shape, dtype=dtype), entry, generator))
        else:
            values[name] = draw(parameter.shape, distribution, dtype, generator)
    return values
