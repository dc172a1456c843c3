"""`verify --matrix`: levels 1-4 for every catalog entry: every activation (with Adam) and every optimizer (with ReLU)
on a small MLP and CNN, and on the MLP (ReLU, Adam) every loss with its output activations, every schedule and every
initializer (kernel and bias).

Each cell is one spec built from the base experiment (its data and seed) with `--set`-style
overrides, so a cell can be rerun alone: `mnist-parity verify BASE --levels 1-4 --set ...`.
The MLP is 784 -> 48 -> 24 -> 10; the CNN is conv(6) -> act -> batch norm -> pool ->
conv(12) -> act -> pool -> dropout -> dense(24) -> act -> dropout -> dense(10): small enough that
52 cells on four backends fit in minutes, with every layer kind of the seed CNN in it.
Level 3 steps only the cell's own optimizer (the optimizer axis covers them all). A schedule shows at level 4 (its
periods fit in the default 100 steps), an initializer in native mode at level 1, where each backend's own initial
draw is compared with the oracle's as a distribution (experiments.verify.initial).
"""

from experiments.spec import ExperimentSpec, load_spec
from experiments.spec.loading import toml_value
from experiments.verify.cases import (LEVEL3_OPTIMIZERS, MATRIX_ACTIVATIONS, MATRIX_INITIALIZERS, MATRIX_LOSSES,
                                      MATRIX_SCHEDULES)

MATRIX_OPTIMIZER = "adam"  # the activation axis trains with LEVEL3_OPTIMIZERS["adam"]
MATRIX_ACTIVATION = "relu"  # the optimizer axis uses relu


def _model_overrides(model: str, activation: str) -> list[str]:
    pool = '{size = 2, stride = 2, padding = "same"}'
    if model == "mlp":
        return ['model.kind="mlp"',
                f"model.hidden=[{{units = 48, activation = {activation}}}, {{units = 24, activation = {activation}}}]"]
    return [
        'model.kind="cnn"',
        f'model.conv=[{{filters = 6, kernel_size = 3, padding = "same", activation = {activation}, '
        f"batch_norm = {{momentum = 0.9, epsilon = 1e-3}}, pool = {pool}}}, "
        f'{{filters = 12, kernel_size = 3, padding = "same", activation = {activation}, pool = {pool}, dropout = 0.2}}]',
        f"model.hidden=[{{units = 24, activation = {activation}, dropout = 0.2}}]",
    ]


def _mlp_only_axes() -> list[tuple[str, str, list[str]]]:
    """(axis, entry, overrides) of the MLP-only axes: losses with their outputs, schedules, initializers."""
    axes = [("loss", name, [f"loss={toml_value(loss)}", f"model.output_activation={toml_value(output)}"])
            for name, (loss, output) in MATRIX_LOSSES.items()]
    axes += [("schedule", name, [f"schedule={toml_value(table)}"]) for name, table in MATRIX_SCHEDULES.items()]
    axes += [("initializer", name, [f"model.kernel_init={toml_value(table)}", f"model.bias_init={toml_value(table)}"])
             for name, table in MATRIX_INITIALIZERS.items()]
    return axes


def matrix_cells(base: str, overrides: list[str], dtype: str) -> dict[str, dict]:
    """{cell id: {"spec", "step_cases", "model", "axis", "entry", "overrides"}} for both models and both axes, then the
    MLP-only axes."""
    relu = toml_value(MATRIX_ACTIVATIONS[MATRIX_ACTIVATION])
    rows = []
    for model in ("mlp", "cnn"):
        rows += [(model, "activation", name, toml_value(table), MATRIX_OPTIMIZER, []) for name, table in MATRIX_ACTIVATIONS.items()]
        rows += [(model, "optimizer", name, relu, name, []) for name in LEVEL3_OPTIMIZERS]
    rows += [("mlp", axis, entry, relu, MATRIX_OPTIMIZER, extra) for axis, entry, extra in _mlp_only_axes()]
    cells = {}
    for model, axis, entry, activation, optimizer, extra in rows:
        cell_overrides = [*overrides, f'dtype="{dtype}"', *_model_overrides(model, activation),
                          f"optimizer={toml_value(LEVEL3_OPTIMIZERS[optimizer])}", "schedule={name = \"constant\"}", *extra]
        spec: ExperimentSpec = load_spec(base, cell_overrides)
        cell = f"{model}-{axis}-{entry}"
        cells[cell] = {
            "spec": spec.model_copy(update={"name": cell}).to_dict(),
            "step_cases": {optimizer: LEVEL3_OPTIMIZERS[optimizer]},
            "model": model, "axis": axis, "entry": entry, "overrides": cell_overrides,
        }
    return cells
