"""The catalog's optimizers (experiments.catalog.optimizers) on torch, and the catalog's global-norm clipping.

torch.optim built-ins where their single-tensor code (torch 2.13, read from its source) is the catalog
formula once every argument is pinned; NAdam is written here (see `NAdam`).
"""

import torch

from experiments.catalog import optimizers as catalog

# The single-tensor path of every built-in, no maximisation, no autograd through the step.
_COMMON = dict(maximize=False, foreach=False, differentiable=False)


def clip_global_norm(parameters, max_norm: float) -> None:
    """The catalog's clipping, in place. Not torch's clip_grad_norm_, which scales by c / (||g|| + 1e-6). A zero
    norm gives c / 0 = inf, clamped to 1; a non-finite norm makes the gradients non-finite (the loss already is)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, ord=2) for g in grads]), ord=2)
    scale = torch.clamp(max_norm / norm, max=1.0)
    for g in grads:
        g.mul_(scale)


class NAdam(torch.optim.Optimizer):
    """The catalog's NAdam. Not torch.optim.NAdam, which keeps the product P_t of mu_t in a scalar tensor of the
    *default* dtype (float32 in this suite, which never changes it), so float64 training would carry float32
    rounding (~1e-7) in 1 / (1 - P_t); here mu_t and P_t are Python floats (float64)."""

    def __init__(self, params, lr: float, beta_1: float, beta_2: float, epsilon: float, momentum_decay: float):
        defaults = dict(lr=lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, momentum_decay=momentum_decay)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        if closure is not None:
            raise ValueError("NAdam.step takes no closure")
        for group in self.param_groups:
            lr, b1, b2, eps, psi = (group[k] for k in ("lr", "beta_1", "beta_2", "epsilon", "momentum_decay"))
            for p in group["params"]:
                if p.grad is None:
                    continue
                g, state = p.grad, self.state[p]
                if not state:
                    state.update(step=0, mu_product=1.0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                state["step"] = t = state["step"] + 1
                mu = b1 * (1.0 - 0.5 * 0.96 ** (t * psi))
                mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
                state["mu_product"] = product = state["mu_product"] * mu
                m, v = state["m"], state["v"]
                m.mul_(b1).add_(g, alpha=1.0 - b1)
                v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
                denominator = (v / (1.0 - b2**t)).sqrt_().add_(eps)
                p.addcdiv_(g, denominator, value=-lr * (1.0 - mu) / (1.0 - product))
                p.addcdiv_(m, denominator, value=-lr * mu_next / (1.0 - product * mu_next))
        return None


def _build(entry, parameters) -> torch.optim.Optimizer:
    name, lr = entry.name, entry.learning_rate
    if name in ("sgd", "momentum", "nesterov"):
        # torch refuses nesterov=True with momentum 0, where the catalog's formula is plain SGD.
        nesterov = name == "nesterov" or (name == "sgd" and entry.nesterov)
        return torch.optim.SGD(parameters, lr=lr, momentum=entry.momentum, dampening=0.0, weight_decay=0.0,
                               nesterov=nesterov and entry.momentum > 0.0, fused=False, **_COMMON)
    if name == "adagrad":  # lr_decay=0: torch divides lr by 1 + (t - 1) lr_decay
        return torch.optim.Adagrad(parameters, lr=lr, lr_decay=0.0, weight_decay=0.0,
                                   initial_accumulator_value=entry.initial_accumulator_value, eps=entry.epsilon,
                                   fused=False, **_COMMON)
    if name == "rmsprop":  # torch's alpha is the catalog's rho
        return torch.optim.RMSprop(parameters, lr=lr, alpha=entry.rho, eps=entry.epsilon, weight_decay=0.0,
                                   momentum=entry.momentum, centered=entry.centered, capturable=False, **_COMMON)
    if name in ("adam", "adamw"):  # decoupled_weight_decay=True is torch's AdamW (every tensor of the group)
        decay = entry.weight_decay if name == "adamw" else 0.0
        return torch.optim.Adam(parameters, lr=lr, betas=(entry.beta_1, entry.beta_2), eps=entry.epsilon,
                                weight_decay=decay, amsgrad=False, capturable=False, decoupled_weight_decay=name == "adamw",
                                fused=False, **_COMMON)
    if name == "adadelta":
        return torch.optim.Adadelta(parameters, lr=lr, rho=entry.rho, eps=entry.epsilon, weight_decay=0.0,
                                    capturable=False, **_COMMON)
    if name == "adamax":
        return torch.optim.Adamax(parameters, lr=lr, betas=(entry.beta_1, entry.beta_2), eps=entry.epsilon,
                                  weight_decay=0.0, capturable=False, **_COMMON)
    if name == "nadam":
        return NAdam(parameters, lr=lr, beta_1=entry.beta_1, beta_2=entry.beta_2, epsilon=entry.epsilon,
                     momentum_decay=entry.momentum_decay)
    raise ValueError(f"the torch backend has no optimizer {name!r}")


def make_optimizer(entry, parameters) -> torch.optim.Optimizer:
    """The catalog optimizer over `parameters`; the runner sets param_group["lr"] before every step. With
    entry.clip_global_norm set, a step pre-hook clips the gradients of every parameter it holds (`clip_global_norm`)."""
    optimizer = _build(entry, list(parameters))
    if entry.clip_global_norm is not None:
        c = entry.clip_global_norm

        def clip(opt, args, kwargs):
            clip_global_norm([p for group in opt.param_groups for p in group["params"]], c)

        optimizer.register_step_pre_hook(clip)
    return optimizer


def make_native_optimizer(entry, parameters, native_clipping: bool = False) -> torch.optim.Optimizer:
    """implementation = "native": torch.optim's own class for the entry, given only what the entry states in torch's
    parameterisation (rho -> alpha for RMSprop, beta_1/beta_2 -> betas, epsilon -> eps); torch's defaults for the
    rest (foreach, lr_decay, weight_decay of the non-W optimizers). NAdam is torch.optim.NAdam (its momentum product
    in a float32 tensor: the backend's own `NAdam` is the catalog's). With entry.clip_global_norm set the pre-hook
    clips with torch.nn.utils.clip_grad_norm_ (c / (||g|| + 1e-6)) when `native_clipping`, else the catalog's."""
    parameters, name, lr = list(parameters), entry.name, entry.learning_rate
    if name in ("sgd", "momentum", "nesterov"):
        nesterov = name == "nesterov" or (name == "sgd" and entry.nesterov)  # torch refuses nesterov at momentum 0
        optimizer = torch.optim.SGD(parameters, lr=lr, momentum=entry.momentum, dampening=0.0,
                                    nesterov=nesterov and entry.momentum > 0.0)
    elif name == "adagrad":
        optimizer = torch.optim.Adagrad(parameters, lr=lr, initial_accumulator_value=entry.initial_accumulator_value,
                                        eps=entry.epsilon)
    elif name == "rmsprop":
        optimizer = torch.optim.RMSprop(parameters, lr=lr, alpha=entry.rho, eps=entry.epsilon, momentum=entry.momentum,
                                        centered=entry.centered)
    elif name == "adam":
        optimizer = torch.optim.Adam(parameters, lr=lr, betas=(entry.beta_1, entry.beta_2), eps=entry.epsilon)
    elif name == "adamw":
        optimizer = torch.optim.AdamW(parameters, lr=lr, betas=(entry.beta_1, entry.beta_2), eps=entry.epsilon,
                                      weight_decay=entry.weight_decay)
    elif name == "adadelta":
        optimizer = torch.optim.Adadelta(parameters, lr=lr, rho=entry.rho, eps=entry.epsilon)
    elif name == "adamax":
        optimizer = torch.optim.Adamax(parameters, lr=lr, betas=(entry.beta_1, entry.beta_2), eps=entry.epsilon)
    elif name == "nadam":
        optimizer = torch.optim.NAdam(parameters, lr=lr, betas=(entry.beta_1, entry.beta_2), eps=entry.epsilon,
                                      momentum_decay=entry.momentum_decay)
    else:
        raise ValueError(f"the torch backend has no optimizer {name!r}")
    add_clipping(optimizer, entry, native_clipping)
    return optimizer


def add_clipping(optimizer: torch.optim.Optimizer, entry, native: bool) -> None:
    """With entry.clip_global_norm set, a step pre-hook clipping every parameter the optimizer holds: torch's
    clip_grad_norm_ (`native`) or the catalog's clip_global_norm."""
    if entry.clip_global_norm is None:
        return
    c = entry.clip_global_norm

    def clip(opt, args, kwargs):
        parameters = [p for group in opt.param_groups for p in group["params"]]
        if native:
            torch.nn.utils.clip_grad_norm_(parameters, max_norm=c)
        else:
            clip_global_norm(parameters, c)

    optimizer.register_step_pre_hook(clip)


# catalog slot -> torch's state key
_STATE_KEYS = {
    "sgd": {"momentum": "momentum_buffer"}, "momentum": {"momentum": "momentum_buffer"},
    "nesterov": {"momentum": "momentum_buffer"}, "adagrad": {"sum": "sum"},
    "rmsprop": {"square": "square_avg", "mean": "grad_avg", "momentum": "momentum_buffer"},
    "adam": {"m": "exp_avg", "v": "exp_avg_sq"}, "adamw": {"m": "exp_avg", "v": "exp_avg_sq"}, "nadam": {"m": "m", "v": "v"},
    "adadelta": {"square": "square_avg", "delta": "acc_delta"}, "adamax": {"m": "exp_avg", "u": "exp_inf"},
}


def state_slots(entry, native: bool = False) -> dict[str, str]:
    """torch's state key -> catalog slot name, for the slots the entry's formula uses (catalog.state_slots); `native`:
    of make_native_optimizer's optimizer (torch.optim.NAdam keeps exp_avg and exp_avg_sq)."""
    keys = _STATE_KEYS[entry.name]
    if native and entry.name == "nadam":
        keys = {"m": "exp_avg", "v": "exp_avg_sq"}
    return {keys[slot]: slot for slot in catalog.state_slots(entry)}


def native_schedule(schedule, base_rate: float, steps_per_epoch: int):
    """implementation = "native": torch.optim.lr_scheduler's own scheduler for the spec's schedule, stepped once per
    optimizer step (t = 0 is the rate before the first scheduler step), as a function of an int64 array of steps to
    their rates; None where torch has no built-in (inverse_time; polynomial with an end factor; piecewise factors
    that are not 1, g, g^2, ...; a period or boundary that is not a whole number of steps).

    torch's schedulers are recursive: ExponentialLR multiplies the rate by gamma = decay_rate ** (1 / T) every step,
    MultiStepLR by gamma at each milestone, CosineAnnealingLR updates the previous rate by a ratio of cosines and does
    not stop at T_max (it rises again, period 2 T_max), where the catalog evaluates a closed form and holds alpha
    after T."""
    name = schedule.name
    period = schedule.period(steps_per_epoch) if hasattr(schedule, "period") else None
    whole = period is not None and float(period).is_integer()
    holder = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_rate)
    if name == "constant":
        scheduler = None
    elif name == "exponential":
        if schedule.staircase:
            if not whole:
                return None
            scheduler = torch.optim.lr_scheduler.StepLR(holder, step_size=int(period), gamma=schedule.decay_rate)
        else:
            scheduler = torch.optim.lr_scheduler.ExponentialLR(holder, gamma=schedule.decay_rate ** (1.0 / period))
    elif name == "polynomial":
        if schedule.end_factor != 0.0 or not whole:
            return None
        scheduler = torch.optim.lr_scheduler.PolynomialLR(holder, total_iters=int(period), power=schedule.power)
    elif name == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(holder, T_max=period, eta_min=schedule.alpha * base_rate)
    elif name == "piecewise_constant":
        bounds = schedule.boundaries if schedule.boundaries is not None else [b * steps_per_epoch for b in schedule.boundary_epochs]
        factors = schedule.factors_
        gamma = factors[1] if len(factors) > 1 else 1.0
        if factors[0] != 1.0 or any(f != gamma ** k for k, f in enumerate(factors)) or not all(float(b).is_integer() for b in bounds):
            return None
        scheduler = torch.optim.lr_scheduler.MultiStepLR(holder, milestones=[int(b) for b in bounds], gamma=gamma)
    else:
        return None
    produced: list[float] = []

    def rates(steps):
        last = int(steps.max()) if len(steps) else -1
        while len(produced) <= last:  # the scheduler only moves forward: step it to the furthest step asked for
            if produced and scheduler is not None:
                holder.step()  # (a no-op without gradients; keeps torch's order-of-calls check quiet)
                scheduler.step()
            produced.append(float(holder.param_groups[0]["lr"]))
        return [produced[int(t)] for t in steps]

    return rates
