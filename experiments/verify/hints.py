"""Known causes from the parity canon, matched against a failing comparison to explain it.

A framework-specific cause is offered only when that framework is one side of the pair. A step or
trajectory failure that matches no known cause is labelled unexplained, with conditioning named
as one possible cause to check, never as a verdict.
"""

ANY = None
FLATTEN_ORDER = "flatten order: torch flattens (C, H, W), Keras and Flax (H, W, C); MMdnn#595, nn-transfer#16"

HINTS = [
    ("step", "adam", {"keras"}, "Keras' built-in Adam uses epsilon hat (epsilon / sqrt(1 - beta_2^t) here): keras-team/keras#17391"),
    ("step", "rmsprop", {"jax", "keras"}, "epsilon inside vs outside the root, and lr inside the momentum buffer (optax#532, pytorch#23796)"),
    ("step", "adagrad", {"jax", "keras"}, "Adagrad's initial accumulator (torch 0, Keras/optax 0.1) and epsilon inside the root"),
    ("step", "nadam", ANY, "NAdam's momentum schedule differs: torch momentum_decay, Keras 0.96^t, optax none"),
    ("forward", "batch_norm", ANY, "BatchNorm epsilon (torch 1e-5, Keras 1e-3) or momentum convention (torch 1 - m)"),
    ("forward", "flatten", ANY, FLATTEN_ORDER),
    ("forward", "dense_0", {"torch"}, FLATTEN_ORDER),
    ("forward", "max_pool", ANY, "SAME pooling puts the extra padding at the end (tensorflow#7969); Flax max_pool strides default to 1"),
    ("forward", "conv2d", ANY, "padding: Flax Conv defaults to SAME, torch and Keras to valid (flax#2993)"),
    ("forward", "activation", ANY, "an activation default: LeakyReLU slope (0.01 / 0.3 / 0.2), GELU approximate, PReLU init"),
    ("gradients", "batch_norm", ANY, "BatchNorm train-mode variance (biased) or epsilon"),
    ("trajectory", "batch_norm_", {"torch"}, "torch's BatchNorm updates running_var with the unbiased estimate"),
]

CONDITIONING = (
    "unexplained; one possible cause to check: adaptive optimizers divide each gradient element by its own running "
    "magnitude, so rounding in near-zero gradient elements (e.g. a bias feeding a batch norm, whose true gradient "
    "is 0) can become a step-sized difference; if the gradients level passes, compare with a larger epsilon"
)


def hint_for(level: str, where: str, pair: tuple[str, str] = ("", "")) -> str:
    """The first known cause whose level, name fragment and framework match, else (steps and trajectories) the
    labelled-unexplained conditioning note."""
    for hint_level, fragment, frameworks, text in HINTS:
        if hint_level == level and fragment in where and (frameworks is ANY or frameworks & set(pair)):
            return text
    return CONDITIONING if level in ("step", "trajectory") else ""
