"""The installed JAX, Flax and Optax defaults for the catalog's hyperparameters, read at run time.

Every value comes from the installed packages (inspect.signature, an initialiser's closure,
a freshly initialised module), so a release that changes a default changes this table. Rows
use the catalog's entry and parameter names (layers by their plan names) and say in `source`
which symbol and which of its parameters holds the value; where the catalog's parameter is a
mode (gelu's approximate, prelu's per_channel) the value is translated to the catalog's terms
and the source keeps the framework's own. The backend never uses these defaults: every
argument is passed from the spec (see backends.base and the catalog's docstrings).

    python -m backends.jax.defaults    # prints the rows as JSON
"""

import functools
import inspect
import json
from typing import Any, Callable

import numpy as np

from backends.jax.framework import jax, nn, optax
from experiments.catalog import OPTIMIZERS


_REQUIRED = object()


def _default(fn: Callable, parameter: str) -> Any:
    """The default of fn's parameter (a Flax module class: its dataclass field); _REQUIRED if it has none."""
    value = inspect.signature(fn).parameters[parameter].default
    return _REQUIRED if value is inspect.Parameter.empty else value


def _plain(value: Any) -> Any:
    """A JSON value: dtypes by name, initialisers described by their closure, tuples as lists."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.dtype, type)) and np.issubdtype(np.dtype(value), np.number):
        return np.dtype(value).name
    if callable(value):
        return _describe_initializer(value)
    return repr(value)


def _describe_initializer(fn: Callable) -> str:
    """variance_scaling(scale, mode, distribution) read from the initialiser's closure, or its name."""
    cells = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__ or ())))
    if {"scale", "mode", "distribution"} <= cells.keys():
        return f"variance_scaling(scale={cells['scale']}, mode={cells['mode']!r}, distribution={cells['distribution']!r})"
    return f"{fn.__module__}.{fn.__qualname__}"


def _row(entry: str, parameter: str, value: Any, source: str) -> dict:
    return {"entry": entry, "parameter": parameter, "value": _plain(value), "source": source}


def _from(entry: str, parameter: str, symbol: str, own: str, translate: Callable[[Any], Any] = lambda v: v) -> dict:
    """A row whose value is the default of `symbol`'s parameter `own` (translated to catalog terms);
    None where the framework has no default (the argument is required)."""
    raw = _default(_resolve(symbol), own)
    if raw is _REQUIRED:
        return _row(entry, parameter, None, f"{symbol}({own}): required, no default")
    value = translate(raw)
    source = f"{symbol}({own}={_plain(raw)!r})" if value != raw or type(value) is not type(raw) else f"{symbol}({own})"
    return _row(entry, parameter, value, source)


def _resolve(symbol: str) -> Callable:
    """The object a public dotted name such as "flax.linen.BatchNorm" or "optax.adam" names."""
    module, name = symbol.rsplit(".", 1)
    return getattr({"jax.nn": jax.nn, "flax.linen": nn, "optax": optax}[module], name)


def _flax_prelu_shape() -> tuple:
    """The shape of nn.PReLU's parameter, from a freshly initialised default module."""
    variables = nn.PReLU().init(jax.random.key(0), np.zeros((1, 3), np.float32))
    return tuple(variables["params"]["negative_slope"].shape)


OPTAX_OPTIMIZERS = {  # catalog entry -> optax alias (momentum and nesterov are optax.sgd's options)
    "sgd": "optax.sgd", "momentum": "optax.sgd", "nesterov": "optax.sgd", "adagrad": "optax.adagrad",
    "rmsprop": "optax.rmsprop", "adam": "optax.adam", "adamw": "optax.adamw", "adadelta": "optax.adadelta",
    "adamax": "optax.adamax", "nadam": "optax.nadam",
}
OPTAX_PARAMETERS = {  # catalog parameter -> optax's name, for the aliases that have it
    "learning_rate": "learning_rate", "momentum": "momentum", "nesterov": "nesterov", "beta_1": "b1", "beta_2": "b2",
    "epsilon": "eps", "eps_root": "eps_root", "weight_decay": "weight_decay", "rho": "decay",
    "initial_accumulator_value": "initial_accumulator_value", "centered": "centered", "eps_in_sqrt": "eps_in_sqrt",
    "initial_scale": "initial_scale", "bias_correction": "bias_correction",
}
OPTAX_ONLY = {"eps_root", "eps_in_sqrt", "initial_scale", "bias_correction"}  # not catalog fields, but formula switches
NONE_IS_ZERO = {"momentum"}  # optax.sgd / optax.rmsprop: momentum=None means no momentum


def _optimizer_rows() -> list[dict]:
    rows = []
    for entry, symbol in OPTAX_OPTIMIZERS.items():
        own_parameters = inspect.signature(_resolve(symbol)).parameters
        for parameter, own in OPTAX_PARAMETERS.items():
            if entry == "adadelta" and parameter == "rho":
                own = "rho"
            wanted = (parameter in OPTIMIZERS[entry].model_fields or parameter in OPTAX_ONLY
                      or (entry, parameter) == ("nadam", "nesterov"))
            if own in own_parameters and wanted:
                translate = (lambda v: 0.0 if v is None else v) if parameter in NONE_IS_ZERO else (lambda v: v)
                rows.append(_from(entry, parameter, symbol, own, translate))
        rows.append(_row(entry, "clip_global_norm", None, "optax.clip_by_global_norm(max_norm): off unless chained; "
                         "it scales by (g / ||g||) * max_norm when ||g|| >= max_norm"))
    rows += [
        _row("adagrad", "eps_in_sqrt", True, "optax.scale_by_rss: g / sqrt(s + eps), no option"),
        _row("rmsprop", "lr_in_momentum_buffer", True, "optax.rmsprop: scale_by_learning_rate comes before trace(momentum)"),
        _row("nadam", "momentum_decay", None, "optax.nadam = adam(nesterov=True): no momentum schedule"),
    ]
    return rows


def _selu_constants() -> tuple[float, float]:
    """(scale, alpha) of jax.nn.selu, read from its values in float64: selu(1) = scale, selu(-inf) = -scale alpha."""
    scale = float(jax.nn.selu(np.float64(1.0)))
    return scale, -float(jax.nn.selu(np.float64(-np.inf))) / scale


def framework_defaults() -> list[dict]:
    """Rows {"entry", "parameter", "value", "source"} of the installed jax/flax/optax defaults."""
    prelu_shape = _flax_prelu_shape()
    selu_scale, selu_alpha = _selu_constants()
    gelu_mode = lambda v: "tanh" if v else "none"  # noqa: E731
    rows = [
        # activations
        _from("leaky_relu", "negative_slope", "jax.nn.leaky_relu", "negative_slope"),
        _from("leaky_relu", "negative_slope", "flax.linen.leaky_relu", "negative_slope"),
        _row("leaky_relu", "derivative_at_0", float(jax.grad(jax.nn.leaky_relu)(0.0)), "jax.grad(jax.nn.leaky_relu)(0.0)"),
        _from("prelu", "initial_value", "flax.linen.PReLU", "negative_slope_init"),
        _from("prelu", "param_dtype", "flax.linen.PReLU", "param_dtype"),
        _row("prelu", "per_channel", prelu_shape != (), f"flax.linen.PReLU parameter shape {prelu_shape} (one scalar)"),
        _row("rrelu", "lower", None, "none: jax.nn and flax.linen have no rrelu"),
        _row("rrelu", "upper", None, "none: jax.nn and flax.linen have no rrelu"),
        _from("elu", "alpha", "jax.nn.elu", "alpha"),
        _row("elu", "derivative_at_0", float(jax.grad(functools.partial(jax.nn.elu, alpha=0.5))(0.0)),
             "jax.grad(jax.nn.elu(x, alpha=0.5))(0.0): 0.5 is the x <= 0 branch (alpha)"),
        _row("selu", "scale", selu_scale, "jax.nn.selu(1.0) in float64"),
        _row("selu", "alpha", selu_alpha, "jax.nn.selu: -selu(-inf) / selu(1.0) in float64"),
        _row("softplus", "beta", 1.0, "jax.nn.softplus(x) = logaddexp(x, 0): no beta parameter"),
        _from("gelu", "approximate", "jax.nn.gelu", "approximate", gelu_mode),
        _from("gelu", "approximate", "flax.linen.gelu", "approximate", gelu_mode),
        _row("hard_sigmoid", "derivative_at_3", float(jax.grad(jax.nn.hard_sigmoid)(3.0)),
             "jax.grad(jax.nn.hard_sigmoid)(3.0) (relu6's custom JVP)"),
        _row("maxout", "tie_gradient", [float(v) for v in jax.grad(jax.numpy.max)(np.array([1.0, 1.0]))],
             "jax.grad(jnp.max)([1, 1]): split among ties (the catalog: all to the first)"),
        _from("softmax", "axis", "jax.nn.softmax", "axis"),
        # layers
        _from("dense", "kernel_init", "flax.linen.Dense", "kernel_init"),
        _from("dense", "bias_init", "flax.linen.Dense", "bias_init"),
        _from("dense", "param_dtype", "flax.linen.Dense", "param_dtype"),
        _from("dense", "precision", "flax.linen.Dense", "precision"),
        _from("dense", "dropout", "flax.linen.Dropout", "rate"),
        _from("conv2d", "padding", "flax.linen.Conv", "padding"),
        _from("conv2d", "stride", "flax.linen.Conv", "strides"),
        _from("conv2d", "kernel_init", "flax.linen.Conv", "kernel_init"),
        _from("conv2d", "bias_init", "flax.linen.Conv", "bias_init"),
        _from("conv2d", "param_dtype", "flax.linen.Conv", "param_dtype"),
        _from("conv2d", "dropout", "flax.linen.Dropout", "rate"),
        _from("max_pool", "stride", "flax.linen.max_pool", "strides"),
        _from("max_pool", "padding", "flax.linen.max_pool", "padding"),
        _from("batch_norm", "momentum", "flax.linen.BatchNorm", "momentum"),
        _from("batch_norm", "epsilon", "flax.linen.BatchNorm", "epsilon"),
        _from("batch_norm", "use_running_average", "flax.linen.BatchNorm", "use_running_average"),
        _from("batch_norm", "use_fast_variance", "flax.linen.BatchNorm", "use_fast_variance"),
        _from("batch_norm", "force_float32_reductions", "flax.linen.BatchNorm", "force_float32_reductions"),
        _from("batch_norm", "param_dtype", "flax.linen.BatchNorm", "param_dtype"),
        _from("dropout", "deterministic", "flax.linen.Dropout", "deterministic"),
        # losses (optax losses return per-example values: the caller reduces)
        _from("categorical_crossentropy", "axis", "optax.softmax_cross_entropy", "axis"),
        _row("categorical_crossentropy", "reduction", "none", "optax.softmax_cross_entropy: per-example values"),
        _row("categorical_crossentropy", "label_smoothing", None, "optax.softmax_cross_entropy: no smoothing argument; "
             "optax.smooth_labels(labels, alpha) = (1 - alpha) labels + alpha / C"),
        _row("binary_crossentropy", "reduction", "none",
             "optax.sigmoid_binary_cross_entropy(logits, labels): per-element values"),
        _row("binary_crossentropy", "label_smoothing", None, "optax.sigmoid_binary_cross_entropy: no smoothing argument"),
        _from("kl_divergence", "axis", "optax.kl_divergence", "axis"),
        _row("kl_divergence", "reduction", "none", "optax.kl_divergence(log_predictions, targets): per-example sums"),
        _row("mse", "reduction", "none", "optax.squared_error: per-element values; optax.l2_loss is 0.5 * squared_error"),
    ]
    return rows + _optimizer_rows()


if __name__ == "__main__":
    print(json.dumps(framework_defaults(), indent=1))
