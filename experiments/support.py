"""Which catalog entries each backend supports, read from the backends' SUPPORTED tables (no framework import)."""

from backends import BACKENDS, backend_package
from experiments import catalog
from experiments.spec import ExperimentSpec
from experiments.spec import plan as P

CATEGORIES = {
    "activations": catalog.ACTIVATIONS,
    "output_activations": catalog.OUTPUT_ACTIVATIONS,
    "losses": catalog.LOSSES,
    "optimizers": catalog.OPTIMIZERS,
    "schedules": catalog.SCHEDULES,
    "initializers": catalog.INITIALIZERS,
}
RUNNER_REALISED = {"schedules"}
"""Schedules are closed forms the runner evaluates per step; a backend supports them all by taking per-step rates."""
_LAYER_KINDS = {
    P.Dense: "dense", P.Conv2D: "conv2d", P.Activation: "activation", P.BatchNormalization: "batch_norm",
    P.MaxPool2D: "max_pool", P.Dropout: "dropout", P.Flatten: "flatten",
}


def supported(backend: str) -> dict[str, frozenset]:
    """The backend's SUPPORTED table."""
    return backend_package(backend).SUPPORTED


def _supports(table: dict, category: str, entry: str) -> bool:
    if category in RUNNER_REALISED:
        return True
    if category == "initializers":  # each initialiser reduces to one of four sampling distributions
        return {"constant", "uniform", "normal", "truncated_normal"} <= set(table.get("initializer_distributions", ()))
    return entry in table.get(category, ())


def support_matrix(category: str) -> list[dict]:
    """One row per catalog entry of the category, one boolean column per backend."""
    tables = {name: supported(name) for name in BACKENDS}
    return [
        {"name": entry, **{backend: _supports(tables[backend], category, entry) for backend in BACKENDS}}
        for entry in CATEGORIES[category]
    ]


def missing_support(backend: str, spec: ExperimentSpec, plan: tuple) -> list[str]:
    """What the spec needs that the backend lacks, e.g. ["activation 'maxout'"]; empty when it can run."""
    table = supported(backend)
    needs = [("layers", _LAYER_KINDS[type(layer)], "layer") for layer in plan]
    needs += [("activations", layer.activation.name, "activation") for layer in plan if isinstance(layer, P.Activation)]
    needs += [
        ("output_activations", spec.model.output_activation.name, "output activation"),
        ("losses", spec.loss.name, "loss"),
        ("optimizers", spec.optimizer.name, "optimizer"),
    ]
    missing = [f"{label} {name!r}" for key, name, label in needs if name not in table.get(key, ())]
    return list(dict.fromkeys(missing))
