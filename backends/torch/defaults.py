"""PyTorch's own defaults for what the suite pins, read live from the installed torch (`python -m backends.torch.defaults`).

Rows {"entry", "parameter", "value", "source"}: entry and parameter are the catalog's names
where one exists (rmsprop "rho" is torch's alpha, "epsilon" its eps, "beta_1"/"beta_2" its
betas, batch_norm "momentum" torch's own convention, which is 1 - the suite's); the source
names the torch argument the value was read from. Values come from inspect.signature, torch
source (the default initialisation, clip_grad_norm_'s epsilon) or, for SELU's constants, by
evaluating torch's own kernel, so a version change shows up.
"""

import inspect
import json
import math
import re
import sys

import torch
from torch import nn

_MISSING = object()


def _default(target, parameter: str):
    """The default of `parameter` in target's signature (its __init__ for a class)."""
    function = target.__init__ if inspect.isclass(target) else target
    value = inspect.signature(function).parameters[parameter].default
    if value is inspect.Parameter.empty:
        raise LookupError(f"{target.__qualname__}({parameter}) has no default")
    return list(value) if isinstance(value, tuple) else value


def _qualified(target) -> str:
    module = target.__module__
    for public in ("torch.nn.functional", "torch.nn.init", "torch.nn.utils", "torch.optim", "torch.nn"):
        if module.startswith(public):
            return f"{public}.{target.__name__}"
    return f"{module}.{target.__name__}"


def _row(entry: str, parameter: str, value, source: str) -> dict:
    return {"entry": entry, "parameter": parameter, "value": value, "source": source}


def _argument(entry: str, parameter: str, target, argument: str, note: str = "") -> dict:
    """A row whose value is target's default for `argument`; source 'torch.X(argument=...)'."""
    source = f"{_qualified(target)}({argument}=...)" + (f"; {note}" if note else "")
    return _row(entry, parameter, _default(target, argument), source)


def _activation_rows() -> list[dict]:
    rows = [
        _argument("leaky_relu", "negative_slope", nn.LeakyReLU, "negative_slope"),
        _argument("prelu", "initial_value", nn.PReLU, "init"),
        _row("prelu", "per_channel", _default(nn.PReLU, "num_parameters") != 1,
             f"torch.nn.PReLU(num_parameters={_default(nn.PReLU, 'num_parameters')}): one alpha unless num_parameters=C"),
        _argument("rrelu", "lower", nn.RReLU, "lower"),
        _argument("rrelu", "upper", nn.RReLU, "upper"),
        _argument("elu", "alpha", nn.ELU, "alpha"),
        _argument("softplus", "beta", nn.Softplus, "beta"),
        _argument("softplus", "threshold", nn.Softplus, "threshold", "returns x where beta x > threshold"),
        _argument("gelu", "approximate", nn.GELU, "approximate"),
        _argument("softmax", "dim", nn.Softmax, "dim", "None picks a dim implicitly (deprecated)"),
    ]
    with torch.no_grad():  # torch's SELU constants live in C++: read them back from its float64 kernel
        scale = float(torch.nn.functional.selu(torch.tensor(1.0, dtype=torch.float64)))
        scale_alpha = -float(torch.nn.functional.selu(torch.tensor(-math.inf, dtype=torch.float64)))
    rows.append(_row("selu", "scale", scale, "torch.nn.functional.selu(1.0) in float64"))
    rows.append(_row("selu", "alpha", scale_alpha / scale, "-selu(-inf) / selu(1.0) in float64 (scale * alpha / scale)"))
    return rows


def _initialisation(module: type) -> tuple[str | None, str | None]:
    """The weight and bias initialisers in module.reset_parameters' source (None where not found)."""
    source = inspect.getsource(module.reset_parameters)
    weight = re.search(r"init\.(\w+)\(self\.weight,\s*(.*)\)\s*$", source, re.M)
    bias = re.search(r"init\.(\w+)\(self\.bias,\s*(.*)\)\s*$", source, re.M)
    bound = re.search(r"bound\s*=\s*(.*?)\s+if\b", source)
    weight_text = f"{weight.group(1)}({weight.group(2)})" if weight else None
    bias_text = f"{bias.group(1)}({bias.group(2)}), bound = {bound.group(1) if bound else '?'}" if bias else None
    return weight_text, bias_text


def _layer_rows() -> list[dict]:
    kaiming = torch.nn.init.kaiming_uniform_
    rows = [
        _argument("batch_norm", "momentum", nn.BatchNorm2d, "momentum",
                  "torch convention: r <- (1 - momentum) r + momentum batch (unbiased batch variance); "
                  "the suite's momentum is 1 - this"),
        _argument("batch_norm", "epsilon", nn.BatchNorm2d, "eps"),
        _argument("conv2d", "padding", nn.Conv2d, "padding", "0 is 'valid'"),
        _argument("conv2d", "stride", nn.Conv2d, "stride"),
        _argument("max_pool", "stride", nn.MaxPool2d, "stride", "None means kernel_size"),
        _argument("max_pool", "padding", nn.MaxPool2d, "padding", "symmetric; no 'same'"),
        _argument("max_pool", "ceil_mode", nn.MaxPool2d, "ceil_mode"),
    ]
    for layer, cls in (("dense", nn.Linear), ("conv2d", nn.Conv2d)):
        module = f"torch.nn.{cls.__name__}"
        weight, bias = _initialisation(cls)
        rows += [
            _argument(layer, "dropout", nn.Dropout, "p"),
            _row(layer, "kernel_init", weight,
                 f"{module}.reset_parameters; kaiming_uniform_ defaults mode={_default(kaiming, 'mode')!r}, "
                 f"nonlinearity={_default(kaiming, 'nonlinearity')!r}: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with a=sqrt(5)"),
            _row(layer, "bias_init", bias, f"{module}.reset_parameters"),
        ]
    return rows


# catalog optimizer -> (torch class, [(catalog parameter, torch argument, index into a tuple or None)])
_OPTIMIZERS = {
    "sgd": (torch.optim.SGD, [("learning_rate", "lr", None), ("momentum", "momentum", None), ("nesterov", "nesterov", None),
                              ("dampening", "dampening", None), ("weight_decay", "weight_decay", None)]),
    "momentum": (torch.optim.SGD, [("learning_rate", "lr", None), ("momentum", "momentum", None)]),
    "nesterov": (torch.optim.SGD, [("learning_rate", "lr", None), ("momentum", "momentum", None)]),
    "adagrad": (torch.optim.Adagrad, [("learning_rate", "lr", None), ("initial_accumulator_value", "initial_accumulator_value", None),
                                      ("epsilon", "eps", None), ("lr_decay", "lr_decay", None), ("weight_decay", "weight_decay", None)]),
    "rmsprop": (torch.optim.RMSprop, [("learning_rate", "lr", None), ("rho", "alpha", None), ("epsilon", "eps", None),
                                      ("momentum", "momentum", None), ("centered", "centered", None),
                                      ("weight_decay", "weight_decay", None)]),
    "adam": (torch.optim.Adam, [("learning_rate", "lr", None), ("beta_1", "betas", 0), ("beta_2", "betas", 1), ("epsilon", "eps", None),
                                ("weight_decay", "weight_decay", None), ("amsgrad", "amsgrad", None)]),
    "adamw": (torch.optim.AdamW, [("learning_rate", "lr", None), ("beta_1", "betas", 0), ("beta_2", "betas", 1), ("epsilon", "eps", None),
                                  ("weight_decay", "weight_decay", None)]),
    "adadelta": (torch.optim.Adadelta, [("learning_rate", "lr", None), ("rho", "rho", None), ("epsilon", "eps", None),
                                        ("weight_decay", "weight_decay", None)]),
    "adamax": (torch.optim.Adamax, [("learning_rate", "lr", None), ("beta_1", "betas", 0), ("beta_2", "betas", 1), ("epsilon", "eps", None),
                                    ("weight_decay", "weight_decay", None)]),
    "nadam": (torch.optim.NAdam, [("learning_rate", "lr", None), ("beta_1", "betas", 0), ("beta_2", "betas", 1), ("epsilon", "eps", None),
                                  ("momentum_decay", "momentum_decay", None), ("weight_decay", "weight_decay", None),
                                  ("decoupled_weight_decay", "decoupled_weight_decay", None)]),
}


def _optimizer_rows() -> list[dict]:
    rows = []
    for entry, (cls, parameters) in _OPTIMIZERS.items():
        for parameter, argument, index in parameters:
            value = _default(cls, argument)
            where = f"{_qualified(cls)}({argument}=...)" if index is None else f"{_qualified(cls)}({argument}=...)[{index}]"
            rows.append(_row(entry, parameter, value if index is None else value[index], where))
    clip = torch.nn.utils.clip_grad_norm_
    epsilon = re.search(r"max_norm\s*/\s*\(total_norm\s*\+\s*([0-9.e+-]+)\)", inspect.getsource(sys.modules[clip.__module__]))
    for entry in _OPTIMIZERS:
        rows.append(_row(entry, "clip_global_norm", None,
                         f"off unless torch.nn.utils.clip_grad_norm_ is called (norm_type={_default(clip, 'norm_type')}); "
                         f"it scales by max_norm / (total_norm + {epsilon.group(1) if epsilon else '?'})"))
    return rows


def _loss_rows() -> list[dict]:
    return [
        _argument("categorical_crossentropy", "reduction", nn.CrossEntropyLoss, "reduction"),
        _argument("categorical_crossentropy", "label_smoothing", nn.CrossEntropyLoss, "label_smoothing"),
        _argument("binary_crossentropy", "reduction", nn.BCEWithLogitsLoss, "reduction", "no label_smoothing argument"),
        _argument("kl_divergence", "reduction", nn.KLDivLoss, "reduction", "'mean' divides by N * C; 'batchmean' is the KL batch mean"),
        _argument("kl_divergence", "log_target", nn.KLDivLoss, "log_target"),
        _argument("mse", "reduction", nn.MSELoss, "reduction"),
    ]


def framework_defaults() -> list[dict]:
    """Every row, read from the installed torch."""
    return _activation_rows() + _layer_rows() + _optimizer_rows() + _loss_rows()


def main() -> None:
    """Print the rows as JSON on stdout."""
    json.dump(framework_defaults(), sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
