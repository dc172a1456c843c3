"""The experiment spec: typed model, loss, optimizer, schedule, data, seed and dtype."""

from experiments.spec.experiment import DataSpec, ExperimentSpec, TrainingSpec
from experiments.spec.loading import load_spec, preset_names, validate_spec
from experiments.spec.plan import build_plan, parameter_info, plan_of, trainable_parameter_count

__all__ = [
    "DataSpec",
    "ExperimentSpec",
    "TrainingSpec",
    "build_plan",
    "load_spec",
    "parameter_info",
    "plan_of",
    "preset_names",
    "trainable_parameter_count",
    "validate_spec",
]
