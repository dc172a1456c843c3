"""The suite's catalog: activations, losses, optimizers, schedules and initialisers, one definition each."""

from experiments.catalog.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS, Activation, OutputActivation
from experiments.catalog.initializers import INITIALIZERS, Initializer
from experiments.catalog.losses import LOSSES, Loss
from experiments.catalog.optimizers import OPTIMIZERS, Optimizer
from experiments.catalog.schedules import SCHEDULES, Schedule

__all__ = [
    "ACTIVATIONS",
    "OUTPUT_ACTIVATIONS",
    "INITIALIZERS",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULES",
    "Activation",
    "OutputActivation",
    "Initializer",
    "Loss",
    "Optimizer",
    "Schedule",
]
