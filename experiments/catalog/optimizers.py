"""Optimizers with every hyperparameter explicit, and the update formula each backend realises.

g is the gradient, p the parameter, t the step counted from 1, lr_t the scheduled rate, and
every state starts at 0 unless stated. A field without a suite default is one where the
frameworks' defaults disagree: the spec must choose. The formulas
are torch's unless stated; where a framework's built-in differs (Keras' epsilon hat and
lr-in-buffer momentum, optax's epsilon inside the root), that backend implements the formula.

Every optimizer takes `clip_global_norm` c (off when absent): before the update all gradients
are scaled by min(1, c / ||g||), ||g|| the L2 norm over every trainable tensor. torch's
clip_grad_norm_ divides by ||g|| + 1e-6 and optax/TF by max(||g||, c); the suite's form has
neither epsilon.
"""

from typing import Annotated, Literal

from pydantic import Field

from experiments.catalog.base import Entry
from experiments.catalog.tables import registry, tagged_union

LearningRate = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
Decay = Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)]
Epsilon = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class OptimizerEntry(Entry):
    """Fields every optimizer has."""

    learning_rate: LearningRate
    clip_global_norm: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = None


class Sgd(OptimizerEntry):
    """Stochastic gradient descent, optionally with (Nesterov) momentum, in the torch/optax form.

    b_t = momentum b_{t-1} + g_t (dampening 0); d_t = g_t + momentum b_t if nesterov else b_t;
    p_t = p_{t-1} - lr_t d_t. With momentum 0 this is plain SGD. Keras' built-in keeps
    v = momentum v - lr g, the same only while lr is constant.
    """

    name: Literal["sgd"]
    momentum: Decay = 0.0
    nesterov: bool = False


class Momentum(OptimizerEntry):
    """SGD with heavy-ball momentum: sgd with nesterov false and a momentum that must be given."""

    name: Literal["momentum"]
    momentum: Decay


class Nesterov(OptimizerEntry):
    """SGD with Nesterov momentum (Sutskever et al., 2013, in the torch/optax form): sgd with nesterov true."""

    name: Literal["nesterov"]
    momentum: Decay


class Adagrad(OptimizerEntry):
    """Adagrad (Duchi et al., 2011): s_t = s_{t-1} + g^2, s_0 = initial_accumulator_value;
    p_t = p_{t-1} - lr_t g / (sqrt(s_t) + epsilon).

    Defaults disagree (torch s_0 = 0, eps 1e-10; Keras and optax s_0 = 0.1, eps 1e-7) and so does
    the epsilon's place (Keras and optax put it inside the root), hence no suite defaults.
    """

    name: Literal["adagrad"]
    initial_accumulator_value: NonNegative
    epsilon: Epsilon


class Rmsprop(OptimizerEntry):
    """RMSprop (Tieleman and Hinton, 2012), plain, with momentum, or centered:

    v_t = rho v + (1 - rho) g^2; centered: gbar_t = rho gbar + (1 - rho) g and
    denominator = sqrt(v_t - gbar_t^2) + epsilon, else sqrt(v_t) + epsilon (epsilon outside the
    root, as torch; Keras and optax put it inside by default).
    momentum > 0: b_t = momentum b + g / denominator, p -= lr_t b_t; else p -= lr_t g / denominator.
    rho has no default (torch alpha 0.99, Keras and optax 0.9).
    """

    name: Literal["rmsprop"]
    rho: Decay
    epsilon: Epsilon
    momentum: Decay = 0.0
    centered: bool = False


class Adam(OptimizerEntry):
    """Adam (Kingma and Ba, 2015) with epsilon outside the bias-corrected root (torch, optax):

    m_t = beta_1 m + (1 - beta_1) g;  v_t = beta_2 v + (1 - beta_2) g^2;
    p_t = p - lr_t (m_t / (1 - beta_1^t)) / (sqrt(v_t / (1 - beta_2^t)) + epsilon).
    Keras' built-in uses "epsilon hat", i.e. epsilon / sqrt(1 - beta_2^t) here. Epsilon has no
    suite default (torch and optax 1e-8, Keras 1e-7).
    """

    name: Literal["adam"]
    beta_1: Decay = 0.9
    beta_2: Decay = 0.999
    epsilon: Epsilon


class Adamw(OptimizerEntry):
    """AdamW (Loshchilov and Hutter, 2019), decoupled weight decay: p <- p - lr_t weight_decay p,
    then the Adam update, as torch and optax adamw write it. Keras' AdamW is its Adam with the decay step, so it
    inherits Adam's "epsilon hat" (epsilon / sqrt(1 - beta_2^t) here) and is not this formula at the same epsilon;
    weight_decay has no default (torch 1e-2, Keras 4e-3, optax 1e-4). Decay applies to every trainable tensor."""

    name: Literal["adamw"]
    beta_1: Decay = 0.9
    beta_2: Decay = 0.999
    epsilon: Epsilon
    weight_decay: NonNegative


class Adadelta(OptimizerEntry):
    """Adadelta (Zeiler, 2012): v_t = rho v + (1 - rho) g^2; d = sqrt(u + eps) / sqrt(v_t + eps) g;
    u_t = rho u + (1 - rho) d^2; p -= lr_t d. Same structure in all three; lr (torch 1.0, Keras 1e-3),
    rho (0.9 vs 0.95) and eps (1e-6 vs 1e-7) disagree."""

    name: Literal["adadelta"]
    rho: Decay
    epsilon: Epsilon


class Adamax(OptimizerEntry):
    """Adamax (Kingma and Ba, 2015): m_t = beta_1 m + (1 - beta_1) g; u_t = max(beta_2 u, |g| + epsilon);
    p -= lr_t / (1 - beta_1^t) m_t / u_t (torch and optax; Keras adds epsilon to u instead)."""

    name: Literal["adamax"]
    beta_1: Decay = 0.9
    beta_2: Decay = 0.999
    epsilon: Epsilon


class Nadam(OptimizerEntry):
    """NAdam (Dozat, 2016) with torch's momentum schedule mu_t = beta_1 (1 - 0.5 * 0.96^(t psi)):

    m_t = beta_1 m + (1 - beta_1) g;  v_t = beta_2 v + (1 - beta_2) g^2;  P_t = prod_{i<=t} mu_i;
    vhat = v_t / (1 - beta_2^t);  denominator = sqrt(vhat) + epsilon;
    p -= lr_t (1 - mu_t) / (1 - P_t) g / denominator + lr_t mu_{t+1} / (1 - P_t mu_{t+1}) m_t / denominator.
    psi = momentum_decay (torch 0.004; Keras hard-codes 0.96^t, i.e. psi = 1; optax nadam has no
    schedule at all), so it has no suite default.
    """

    name: Literal["nadam"]
    beta_1: Decay = 0.9
    beta_2: Decay = 0.999
    epsilon: Epsilon
    momentum_decay: NonNegative


OPTIMIZER_ENTRIES = (Sgd, Momentum, Nesterov, Adagrad, Rmsprop, Adam, Adamw, Adadelta, Adamax, Nadam)
OPTIMIZERS = registry(*OPTIMIZER_ENTRIES)
Optimizer = tagged_union(*OPTIMIZER_ENTRIES)


def state_slots(entry: OptimizerEntry) -> tuple[str, ...]:
    """The state slots the entry's formula keeps per parameter, by the names above (what a trainer's
    optimizer_state reports): sgd/momentum/nesterov "momentum" when momentum > 0; adagrad "sum"; rmsprop "square",
    "mean" when centered, "momentum" when momentum > 0; adam/adamw/nadam "m", "v"; adadelta "square", "delta";
    adamax "m", "u"."""
    name = entry.name
    if name in ("sgd", "momentum", "nesterov"):
        return ("momentum",) if entry.momentum > 0 else ()
    if name == "rmsprop":
        return ("square",) + (("mean",) if entry.centered else ()) + (("momentum",) if entry.momentum > 0 else ())
    return {"adagrad": ("sum",), "adam": ("m", "v"), "adamw": ("m", "v"), "nadam": ("m", "v"),
            "adadelta": ("square", "delta"), "adamax": ("m", "u")}[name]
