"""Known causes from the parity canon, matched against a failing comparison to explain it."""

HINTS = [
    (("step", "adam"), "Keras' built-in Adam uses epsilon hat (epsilon / sqrt(1 - beta_2^t) here): keras-team/keras#17391"),
    (("step", "rmsprop"), "epsilon inside vs outside the root, and lr inside the momentum buffer (optax#532, pytorch#23796)"),
    (("step", "adagrad"), "Adagrad's initial accumulator (torch 0, Keras/optax 0.1) and epsilon inside the root"),
    (("step", "nadam"), "NAdam's momentum schedule differs: torch momentum_decay, Keras 0.96^t, optax none"),
    (("step", "momentum"), "Keras folds lr into the velocity: equal to torch only for a constant lr"),
    (("forward", "batch_norm"), "BatchNorm epsilon (torch 1e-5, Keras 1e-3) or momentum convention (torch 1 - m)"),
    (("forward", "dense_0"), "flatten order: torch flattens (C, H, W), Keras and Flax (H, W, C); MMdnn#595, nn-transfer#16"),
    (("forward", "max_pool"), "SAME pooling puts the extra padding at the end (tensorflow#7969); Flax max_pool strides default to 1"),
    (("forward", "conv2d"), "padding: Flax Conv defaults to SAME, torch and Keras to valid (flax#2993)"),
    (("forward", "activation"), "an activation default: LeakyReLU slope (0.01 / 0.3 / 0.2), GELU approximate, PReLU init"),
    (("gradients", "batch_norm"), "BatchNorm train-mode variance (biased) or epsilon"),
    (("trajectory", "batch_norm"), "torch's BatchNorm updates running_var with the unbiased estimate"),
]


def hint_for(level: str, where: str) -> str:
    """The first known cause whose level and name fragment match, or an empty string."""
    for (hint_level, fragment), text in HINTS:
        if hint_level == level and fragment in where:
            return text
    return ""
