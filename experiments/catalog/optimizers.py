"""Optimizers with every hyperparameter explicit, and the update formula each backend realises.

g is the gradient, p the parameter, t the step counted from 1, lr_t the scheduled rate.
A field without a suite default is one where the frameworks' defaults disagree: the spec
must choose (PARITY_CANON section 3a).
"""

from typing import Annotated, Literal

from pydantic import Field

from experiments.catalog.base import Entry
from experiments.catalog.tables import registry, tagged_union

LearningRate = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
Decay = Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)]
Epsilon = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]


class Sgd(Entry):
    """Stochastic gradient descent, optionally with (Nesterov) momentum, in the torch/optax form.

    b_t = momentum * b_{t-1} + g_t  (b_0 = 0, dampening 0)
    d_t = g_t + momentum * b_t if nesterov else b_t
    p_t = p_{t-1} - lr_t * d_t
    With momentum = 0 this is plain SGD. Keras' built-in keeps v = momentum*v - lr*g, which is
    the same only while lr is constant; the suite's formula keeps lr out of the buffer.
    """

    name: Literal["sgd"]
    learning_rate: LearningRate
    momentum: Decay = 0.0
    nesterov: bool = False


class Adam(Entry):
    """Adam (Kingma and Ba, 2015) with epsilon outside the bias-corrected root (torch, optax).

    m_t = beta_1 m_{t-1} + (1 - beta_1) g_t;  v_t = beta_2 v_{t-1} + (1 - beta_2) g_t^2
    p_t = p_{t-1} - lr_t * (m_t / (1 - beta_1^t)) / (sqrt(v_t / (1 - beta_2^t)) + epsilon)
    Keras' built-in Adam uses "epsilon hat": its epsilon acts like epsilon / sqrt(1 - beta_2^t)
    here, so the Keras backend implements this update itself. Epsilon has no suite default:
    torch and optax use 1e-8, Keras 1e-7.

    References: Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
    """

    name: Literal["adam"]
    learning_rate: LearningRate
    beta_1: Decay = 0.9
    beta_2: Decay = 0.999
    epsilon: Epsilon


OPTIMIZER_ENTRIES = (Sgd, Adam)
OPTIMIZERS = registry(*OPTIMIZER_ENTRIES)
Optimizer = tagged_union(*OPTIMIZER_ENTRIES)
