"""Op-level entry points for the parity tests (backends.base), built from the very modules the Trainer trains with.

Arrays are canonical NumPy: the last axis holds the features (channels), as in the plan.
Activations run in torch's layout, the features moved to dim 1 (NCHW for 4-D), exactly as
inside PlanModel; losses and optimizers take (N, C) logits and name -> array dicts as they are.
"""

import numpy as np
import torch
from torch import nn

from backends.torch.activations import activation_module
from backends.torch.framework import tensor_dtype
from backends.torch.losses import make_loss
from backends.torch.optimizers import make_optimizer
from experiments.catalog import OUTPUT_ACTIVATIONS


def _to_torch_layout(x: torch.Tensor) -> torch.Tensor:
    """Canonical (N, ..., C) -> (N, C, ...): the features on dim 1, where the modules expect them."""
    return x.movedim(-1, 1) if x.dim() > 2 else x


def _to_canonical(x: torch.Tensor) -> torch.Tensor:
    return x.movedim(1, -1) if x.dim() > 2 else x


def activation_vjp(entry, x, cotangent, dtype, params=None, training=False, seed=0):
    """(y, dx, dparams) through activations.activation_module, the Trainer's own; prelu's alpha comes from
    params["alpha"] (else the entry's initial_value); rrelu in training draws its slopes from a torch.Generator
    seeded with `seed`. Forward-only activations (step, sign) give dx = 0. x is (N, F) or (N, ..., C); a 1-D x is
    treated as one sample."""
    dt = tensor_dtype(dtype)
    xt = torch.tensor(np.asarray(x), dtype=dt)
    squeeze = xt.dim() == 1
    if squeeze:
        xt = xt.unsqueeze(0)
    xt.requires_grad_(True)
    module = activation_module(entry, xt.shape[-1], dt, torch.Generator(device="cpu").manual_seed(int(seed)))
    if params:
        with torch.no_grad():
            for name, value in params.items():
                getattr(module, {"alpha": "weight"}.get(name, name)).copy_(torch.tensor(np.asarray(value), dtype=dt))
    module.train(bool(training))
    y = _to_canonical(module(_to_torch_layout(xt)))
    ct = torch.tensor(np.asarray(cotangent), dtype=dt).reshape(y.shape)
    named = dict(module.named_parameters())
    inputs = [xt, *named.values()]
    if y.requires_grad:
        grads = torch.autograd.grad(y, inputs, ct, allow_unused=True)
    else:  # step: no gradient path at all
        grads = [None] * len(inputs)
    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, inputs)]
    dx = grads[0].squeeze(0) if squeeze else grads[0]
    y = y.squeeze(0) if squeeze else y
    names = {"weight": "alpha"}
    dparams = {names.get(name, name): g.detach().numpy().copy() for name, g in zip(named, grads[1:])}
    return y.detach().numpy().copy(), dx.detach().numpy().copy(), dparams


def _output_entry(output_activation):
    if isinstance(output_activation, str):
        return OUTPUT_ACTIVATIONS[output_activation](name=output_activation)
    return output_activation


def loss_vjp(loss, output_activation, z, y, dtype):
    """(batch-mean loss as a float, d loss / d z), the loss being losses.make_loss's, as in training."""
    dt = tensor_dtype(dtype)
    zt = torch.tensor(np.asarray(z), dtype=dt, requires_grad=True)
    value = make_loss(loss, _output_entry(output_activation))(zt, torch.tensor(np.asarray(y), dtype=dt)).mean()
    (dz,) = torch.autograd.grad(value, [zt])
    return float(value.detach()), dz.numpy().copy()


def optimizer_steps(optimizer, params, grads, learning_rates, dtype):
    """The params after each step: make_optimizer's optimizer (clipping included) fed the given gradients.

    params: name -> array (every tensor trainable, in the given order); grads: one name -> array
    dict per step; learning_rates[i] is step i's rate. The caller's arrays are not modified.
    """
    dt = tensor_dtype(dtype)
    tensors = {name: nn.Parameter(torch.tensor(np.asarray(value), dtype=dt)) for name, value in params.items()}
    opt = make_optimizer(optimizer, list(tensors.values()))
    rates = np.asarray(learning_rates, dtype=np.float64).reshape(-1)
    if len(rates) != len(grads):
        raise ValueError(f"{len(grads)} gradient steps but {len(rates)} learning rates")
    history = []
    for step_grads, rate in zip(grads, rates):
        if set(step_grads) != set(tensors):
            raise ValueError(f"gradient names {sorted(step_grads)} differ from the parameters {sorted(tensors)}")
        for name, p in tensors.items():
            p.grad = torch.tensor(np.asarray(step_grads[name]), dtype=dt).reshape(p.shape)
        for group in opt.param_groups:
            group["lr"] = float(rate)
        opt.step()
        history.append({name: p.detach().numpy().copy() for name, p in tensors.items()})
    return history
