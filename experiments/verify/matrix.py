"""`verify --matrix`: levels 1-4 for every activation (with Adam) and every optimizer (with ReLU), on a small MLP and CNN.

Each cell is one spec built from the base experiment (its data and seed) with `--set`-style
overrides, so a cell can be rerun alone: `mnist-parity verify BASE --levels 1-4 --set ...`.
The MLP is 784 -> 48 -> 24 -> 10; the CNN is conv(6) -> act -> batch norm -> pool ->
conv(12) -> act -> pool -> dropout -> dense(24) -> act -> dropout -> dense(10): small enough that
52 cells on four backends fit in minutes, with every layer kind of the seed CNN in it.
Level 3 steps only the cell's own optimizer (the optimizer axis covers them all).
"""

from experiments.spec import ExperimentSpec, load_spec
from experiments.spec.loading import toml_value
from experiments.verify.cases import LEVEL3_OPTIMIZERS, MATRIX_ACTIVATIONS

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


def matrix_cells(base: str, overrides: list[str], dtype: str) -> dict[str, dict]:
    """{cell id: {"spec", "step_cases", "model", "axis", "entry", "overrides"}} for both models and both axes."""
    cells = {}
    for model in ("mlp", "cnn"):
        axes = [("activation", name, table, MATRIX_OPTIMIZER) for name, table in MATRIX_ACTIVATIONS.items()]
        axes += [("optimizer", name, MATRIX_ACTIVATIONS[MATRIX_ACTIVATION], name) for name in LEVEL3_OPTIMIZERS]
        for axis, entry, activation, optimizer in axes:
            cell_overrides = [*overrides, f'dtype="{dtype}"', *_model_overrides(model, toml_value(activation)),
                              f"optimizer={toml_value(LEVEL3_OPTIMIZERS[optimizer])}", "schedule={name = \"constant\"}"]
            spec: ExperimentSpec = load_spec(base, cell_overrides)
            cell = f"{model}-{axis}-{entry}"
            cells[cell] = {
                "spec": spec.model_copy(update={"name": cell}).to_dict(),
                "step_cases": {optimizer: LEVEL3_OPTIMIZERS[optimizer]},
                "model": model, "axis": axis, "entry": entry, "overrides": cell_overrides,
            }
    return cells
