"""torch.optim optimizers built with every argument explicit, matching experiments.catalog.optimizers."""

import torch


def make_optimizer(entry, parameters) -> torch.optim.Optimizer:
    """SGD or Adam from the catalog entry; the runner sets param_group["lr"] before every step.

    SGD (torch's single-tensor path): b_1 = g, b_t = momentum * b_{t-1} + (1 - dampening) g with
    dampening 0; d = g + momentum * b (nesterov) or b; p -= lr * d: the catalog formula.
    torch refuses nesterov=True with momentum 0, where the catalog's formula is plain SGD, so
    nesterov is passed only with a nonzero momentum.
    Adam: m = lerp(m, g, 1 - beta_1), v = beta_2 v + (1 - beta_2) g^2,
    p -= lr / (1 - beta_1^t) * m / (sqrt(v) / sqrt(1 - beta_2^t) + eps): the catalog formula
    (epsilon outside the bias-corrected root), not Keras' "epsilon hat".
    """
    common = dict(maximize=False, foreach=False, differentiable=False, fused=False)  # the single-tensor path
    if entry.name == "sgd":
        return torch.optim.SGD(
            parameters, lr=entry.learning_rate, momentum=entry.momentum, dampening=0.0, weight_decay=0.0,
            nesterov=entry.nesterov and entry.momentum > 0.0, **common,
        )
    if entry.name == "adam":
        return torch.optim.Adam(
            parameters, lr=entry.learning_rate, betas=(entry.beta_1, entry.beta_2), eps=entry.epsilon,
            weight_decay=0.0, amsgrad=False, capturable=False, decoupled_weight_decay=False, **common,
        )
    raise ValueError(f"the torch backend has no optimizer {entry.name!r}")
