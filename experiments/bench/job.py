"""The job a bench worker reads, and what a tutorial-style reference model can express (checked the same way for every
framework before its reference.py builds one)."""

from dataclasses import dataclass

from experiments.protocol import JobFile
from experiments.spec import plan as P
from experiments.spec.plan import same_padding

GEMM_SIZE = 2048  # the square float matmul timed in each framework process
GEMM_REPEATS = 3  # timed before the pairs and again after them; the median of all is reported
TUTORIAL_ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh")


@dataclass(frozen=True)
class BenchJob(JobFile):
    """One framework's bench (experiments.bench.worker): the resolved spec, the training split (.npz of uint8 "x" and
    integer "y"), threads, the number of timed (harness, reference) pairs and of batches per timed chunk."""

    backend: str
    spec: dict
    data_path: str
    threads: int
    pairs: int
    steps: int
    gemm_size: int = GEMM_SIZE


class NotExpressible(Exception):
    """The plan or spec has something a tutorial-style model and loop cannot express simply; the reference (and with
    it the ratio) is skipped with this reason rather than faked."""


def require_tutorial_model(spec, plan) -> None:
    """Raise NotExpressible unless the spec is what every reference loop writes the tutorial way: Dense, Conv2D,
    BatchNorm, MaxPool, Dropout and Flatten layers, relu / leaky_relu / sigmoid / tanh activations, softmax
    cross-entropy on one-hot targets without label smoothing, Adam without clipping at a constant rate."""
    problems = []
    for layer in plan:
        if isinstance(layer, P.Activation) and layer.activation.name not in TUTORIAL_ACTIVATIONS:
            problems.append(f"activation {layer.activation.name!r}")
    if spec.loss.name != "categorical_crossentropy" or getattr(spec.loss, "label_smoothing", 0.0):
        problems.append(f"loss {spec.loss.name!r}" + (" with label smoothing" if spec.loss.name == "categorical_crossentropy" else ""))
    if spec.model.output_activation.name != "softmax" or plan[-1].units < 2:
        problems.append(f"output activation {spec.model.output_activation.name!r} with {plan[-1].units} output(s)")
    if spec.optimizer.name != "adam":
        problems.append(f"optimizer {spec.optimizer.name!r}")
    elif spec.optimizer.clip_global_norm is not None:
        problems.append("gradient clipping")
    if spec.schedule.name != "constant":
        problems.append(f"schedule {spec.schedule.name!r}")
    if problems:
        raise NotExpressible("the tutorial-style reference has no " + ", ".join(dict.fromkeys(problems)))


def pool_padding(layer: P.MaxPool2D) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) padding of a max pool ((0, 0) each for "valid")."""
    if layer.padding != "same":
        return (0, 0), (0, 0)
    return (same_padding(layer.input_shape[0], layer.size, layer.stride),
            same_padding(layer.input_shape[1], layer.size, layer.stride))
