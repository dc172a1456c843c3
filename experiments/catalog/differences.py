"""Where a framework's own built-in computes something other than the catalog's formula: one entry per known
difference, as data.

Each entry names the component and the catalog entries it concerns, the frameworks whose built-in has it and the
size measured here, the frameworks whose built-in is the catalog's formula, the built-in's formula in words, where
it shows in the parity ladder, and a source. `mnist-parity list differences` prints them; `verify --native` names
an entry as the cause of a failing row when swapping that component back to the catalog makes the row pass
(experiments.verify.attribution); tests/test_differences.py re-measures every size against the installed frameworks,
so an upgrade that changes a formula fails a test with the entry's id.

Sizes are normwise relative differences between the built-in and the catalog formula under the entry's probe:
- optimizer probe: a float64 MLP 784-4-10 in native mode against the NumPy oracle from the same weights, 20 steps
  of apply_gradients with the gradient p - p* (a quadratic bowl around fixed random p*), the rates and
  hyperparameters the probe names; the difference of the parameters after 20 steps relative to the oracle's
  displacement from the start (tests/test_differences.py, optimizer_probe);
- activation probe: float64 values (forward) or derivatives (gradients) on a fixed grid, 0 included;
- layer probe: the layer's float64 output on real digits against the exact result, as the probe says;
- initializer probe: a float64 MLP 784-48-24-10 in native mode (seed 0); its own initial dense_0 kernel (784 x 48)
  against the catalog's distribution for that layer: the share of values beyond the catalog's support (a
  truncated normal's 2 standard deviations), or the relative difference of a constant;
- loss probe: a float64 MLP 784-48-24-10 in native mode and the NumPy oracle from the same weights, the train-mode
  loss of 64 real digits;
- schedule probe: a native trainer's learning rates for steps 0-119 (20 steps per epoch, base rate 1e-3) against
  the catalog's closed form, for the schedule the probe names.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Difference:
    id: str
    component: str  # one of experiments.spec.experiment.COMPONENTS
    entries: tuple[str, ...]  # the catalog entries concerned; () = every entry of the component
    present: dict[str, float]  # framework -> size measured here (normwise relative, under `probe`)
    builtin: str  # the built-in(s), as a user would call them
    differs: str  # what the built-in computes, against the catalog's formula
    levels: tuple[str, ...]  # where it shows in the ladder
    source: str
    probe: str
    absent: tuple[str, ...] = field(default=())  # frameworks whose built-in is the catalog's formula here

    @property
    def frameworks(self) -> tuple[str, ...]:
        return tuple(self.present)

    def concerns(self, framework: str, component: str, entry: str | None) -> bool:
        """Whether this difference belongs to `framework`'s built-in `component` for the catalog `entry`."""
        return (framework in self.present and component == self.component
                and (not self.entries or entry is None or entry in self.entries))


OPTIMIZER_PROBE = "optimizer probe, float64, 20 steps"
SCHEDULE_PROBE = "schedule probe, 120 steps"
INITIALIZER_PROBE = "initializer probe, dense_0 kernel 784 x 48"
LOSS_PROBE = "loss probe, 64 digits"
RUNNING_PROBE = ("layer probe: the running variance after one train-mode batch norm (momentum 0.99) over the same "
                 "64 digits in 8 channels as the batch-norm probe, float64, against the catalog's biased update")
BATCH_NORM_PROBE = ("layer probe: train-mode output of a batch norm (epsilon 1e-3) over 64 real digits in 8 channels "
                    "(pixel x a + b, a in [0.5, 2], b in [2, 6]), float64, against the exact (long double) result")

DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        "keras-adam-epsilon-hat", "optimizer", ("adam", "adamw"), {"keras": 1.4e-5},
        "keras.optimizers.Adam, keras.optimizers.AdamW",
        "adds epsilon to sqrt(v) before the bias correction of v is applied (\"epsilon hat\"): the step is "
        "lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps), i.e. the catalog's with epsilon scaled by 1 / sqrt(1 - b2^t)",
        ("step", "trajectory"), "keras-team/keras#17391; keras/src/optimizers/adam.py",
        f"{OPTIMIZER_PROBE}, adam, learning rate 1e-3, epsilon 1e-7", absent=("torch", "jax")),
    Difference(
        "keras-rmsprop-epsilon-in-root", "optimizer", ("rmsprop",), {"keras": 7.2e-4},
        "keras.optimizers.RMSprop",
        "divides by sqrt(v + eps) instead of sqrt(v) + eps, and with momentum keeps the learning rate inside the "
        "momentum buffer",
        ("step", "trajectory"), "keras/src/optimizers/rmsprop.py", f"{OPTIMIZER_PROBE}, rho 0.9, epsilon 1e-7", absent=("torch",)),
    Difference(
        "optax-rmsprop-epsilon-in-root", "optimizer", ("rmsprop",), {"jax": 7.2e-4},
        "optax.rmsprop",
        "eps_in_sqrt=True by default: divides by sqrt(v + eps); with momentum the learning rate is applied before the "
        "momentum trace",
        ("step", "trajectory"), "optax#532; optax/_src/alias.py rmsprop", f"{OPTIMIZER_PROBE}, rho 0.9, epsilon 1e-7",
        absent=("torch",)),
    Difference(
        "keras-adagrad-epsilon-in-root", "optimizer", ("adagrad",), {"keras": 1.7e-8},
        "keras.optimizers.Adagrad",
        "divides by sqrt(s + eps) instead of sqrt(s) + eps",
        ("step", "trajectory"), "keras/src/optimizers/adagrad.py", f"{OPTIMIZER_PROBE}, learning rate 1e-2, initial accumulator 0.1, epsilon 1e-7",
        absent=("torch",)),
    Difference(
        "optax-adagrad-epsilon-in-root", "optimizer", ("adagrad",), {"jax": 3.3e-8},
        "optax.adagrad",
        "scale_by_rss divides by sqrt(s + eps) (and gives 0 where s is 0) instead of sqrt(s) + eps",
        ("step", "trajectory"), "optax/_src/transform.py scale_by_rss", f"{OPTIMIZER_PROBE}, learning rate 1e-2, initial accumulator 0.1, epsilon 1e-7",
        absent=("torch",)),
    Difference(
        "keras-adamax-epsilon-on-u", "optimizer", ("adamax",), {"keras": 9.5e-8},
        "keras.optimizers.Adamax",
        "u = max(b2 u, |g|) and the step divides by u + eps, where the catalog (torch, optax) takes max(b2 u, |g| + eps)",
        ("step", "trajectory"), "keras/src/optimizers/adamax.py", f"{OPTIMIZER_PROBE}, learning rate 2e-3, epsilon 1e-7",
        absent=("torch", "jax")),
    Difference(
        "keras-nadam-fixed-schedule", "optimizer", ("nadam",), {"keras": 3.4e-2},
        "keras.optimizers.Nadam",
        "the momentum schedule b1 (1 - 0.5 0.96^t) has no momentum_decay (it is torch's with momentum_decay 1, the "
        "catalog's default is 0.004)",
        ("step", "trajectory"), "keras/src/optimizers/nadam.py", f"{OPTIMIZER_PROBE}, learning rate 2e-3, epsilon 1e-7, momentum_decay 0.004"),
    Difference(
        "optax-nadam-constant-momentum", "optimizer", ("nadam",), {"jax": 0.23},
        "optax.nadam",
        "adam with a Nesterov term and a constant b1: no momentum schedule and no product of the mu_t",
        ("step", "trajectory"), "optax/_src/alias.py nadam (scale_by_adam(nesterov=True))",
        f"{OPTIMIZER_PROBE}, learning rate 2e-3, epsilon 1e-7, momentum_decay 0.004"),
    Difference(
        "torch-nadam-float32-product", "optimizer", ("nadam",), {"torch": 7.3e-10},
        "torch.optim.NAdam",
        "keeps the product of the mu_t in a tensor of the default dtype (float32), so a float64 model's update "
        "carries float32 rounding in 1 / (1 - prod mu)",
        ("step", "trajectory"), "torch/optim/nadam.py (mu_product)", f"{OPTIMIZER_PROBE}, learning rate 2e-3, epsilon 1e-7, momentum_decay 0.004"),
    Difference(
        "keras-sgd-learning-rate-in-velocity", "optimizer", ("momentum", "nesterov"), {"keras": 1.2},
        "keras.optimizers.SGD(momentum, nesterov)",
        "the velocity holds -lr g terms (v = mu v - lr g), so when the learning rate changes between steps the "
        "earlier rates stay in it; the catalog (torch, optax) keeps b = mu b + g and multiplies by this step's rate",
        ("step", "trajectory"), "keras/src/optimizers/sgd.py", f"{OPTIMIZER_PROBE}, momentum 0.9, learning rate 1e-2 * 0.8^t",
        absent=("torch", "jax")),
    Difference(
        "keras-float32-hyperparameters", "optimizer", (), {"keras": 4.6e-9},
        "every keras.optimizers built-in",
        "the learning rate lives in a float32 variable (keras.config.floatx()) and the float hyperparameters are "
        "cast through float32, so a float64 model steps with float32-rounded constants",
        ("step", "trajectory"), "keras/src/optimizers/base_optimizer.py", f"{OPTIMIZER_PROBE}, sgd, learning rate 0.1",
        absent=("torch",)),
    Difference(
        "torch-clip-grad-norm-epsilon", "clipping", (), {"torch": 1.8e-8},
        "torch.nn.utils.clip_grad_norm_",
        "scales by c / (||g|| + 1e-6) instead of c / ||g||",
        ("step", "trajectory"), "torch/nn/utils/clip_grad.py", f"{OPTIMIZER_PROBE}, sgd, learning rate 0.1, clip_global_norm 1 (every step clipped)",
        absent=("jax",)),
    Difference(
        "torch-softplus-threshold", "activation", ("softplus",), {"torch": 2.5e-11},
        "torch.nn.Softplus",
        "returns x itself where beta x > threshold (20), where log(1 + exp(beta x)) / beta is up to 2e-9 larger",
        ("forward", "gradients", "step", "trajectory"), "torch.nn.Softplus documentation",
        "activation probe: forward on 61 points from 19 to 25, beta 1", absent=("keras", "jax")),
    Difference(
        "jax-leaky-relu-derivative-at-zero", "activation", ("leaky_relu",), {"jax": 0.63},
        "jax.nn.leaky_relu",
        "its derivative at exactly 0 is 1; the catalog's (torch's, TF's) is the slope. A leaky_relu after a relu "
        "(seed-cnn) sees many exact zeros",
        ("gradients", "step", "trajectory"), "jax/_src/nn/functions.py leaky_relu (jnp.where(x >= 0, ...))",
        "activation probe: derivative at -1, -0.5, 0, 0.5, 1, slope 0.1", absent=("torch",)),
    Difference(
        "keras-leaky-relu-float32-slope", "activation", ("leaky_relu",), {"keras": 1.8e-9},
        "keras.layers.LeakyReLU (tf.nn.leaky_relu)",
        "keeps its slope in float32 in a float64 model",
        ("forward", "gradients", "step", "trajectory"), "tensorflow leaky_relu kernel (alpha is a float attribute)",
        "activation probe: derivative at -1, -0.5, 0, 0.5, 1, slope 0.1"),
    Difference(
        "tf-selu-derivative-at-zero", "activation", ("selu",), {"keras": 0.27},
        "keras.activations.selu (tf.nn.selu)",
        "its derivative at exactly 0 is scale, where the catalog's (torch's, JAX's) is scale alpha",
        ("gradients", "step", "trajectory"), "tensorflow/python/ops/nn_grad.py _SeluGrad",
        "activation probe: derivative at -1, -0.5, 0, 0.5, 1", absent=("torch", "jax")),
    Difference(
        "keras-gelu-float32-constants", "activation", ("gelu",), {"keras": 5.0e-10},
        "keras.activations.gelu (tf.nn.gelu), approximate False and True",
        "tf.nn.gelu brings 1 / sqrt(2) (exact form, through erfc) and 0.044715 (tanh form) into x's dtype with "
        "tf.cast of a Python float, which goes through float32 first, so a float64 model computes gelu with "
        "float32-rounded constants: 6.7e-9 in the exact form, 5.0e-10 in the tanh form on the probe",
        ("forward", "gradients", "trajectory"),
        "tensorflow/python/ops/nn_ops.py gelu (math_ops.cast(0.7071067811865476, ...), math_ops.cast(0.044715, ...)); "
        "the tf.cast documentation",
        "activation probe: forward at -1, -0.5, 0, 0.5, 1, both forms, the smaller of the two (where absent the larger)",
        absent=("torch", "jax")),
    Difference(
        "keras-prelu-derivative-at-zero", "activation", ("prelu",), {"keras": 7.0e-2},
        "keras.layers.PReLU",
        "computes relu(x) - alpha relu(-x), whose derivative at exactly 0 is 0 (both relus' derivative there), "
        "where the catalog's (torch's) is alpha; the forward and d/dalpha agree. A CNN's blank background gives "
        "exact zeros",
        ("gradients", "trajectory"), "keras/src/layers/activations/prelu.py PReLU.call",
        "activation probe: derivative at -1, -0.5, 0, 0.5, 1, alpha 0.1", absent=("torch",)),
    Difference(
        "flax-prelu-derivative-at-zero", "activation", ("prelu",), {"jax": 0.63},
        "flax.linen.PReLU (native for a prelu with one alpha)",
        "takes the x branch at exactly 0 (jnp.where(x >= 0, ...)), so its derivative there is 1 where the catalog's "
        "(torch's) is alpha; the forward and d/dalpha agree",
        ("gradients", "trajectory"), "flax/linen/activation.py PReLU.__call__",
        "activation probe: derivative at -1, -0.5, 0, 0.5, 1, alpha 0.1", absent=("torch",)),
    Difference(
        "torch-hardsigmoid-float32-backward", "activation", ("hard_sigmoid",), {"torch": 3.0e-8},
        "torch.nn.Hardsigmoid (F.hardsigmoid) on the CPU",
        "the backward multiplies by 1.0f / 6.0f, a float32 1/6, in a float64 model too (the forward divides by 6 "
        "in x's dtype and agrees; the derivative is 0 at -3 and 3, as the catalog's)",
        ("gradients", "trajectory"),
        "aten/src/ATen/native/cpu/Activation.cpp hardsigmoid_backward_kernel (one_sixth(1.0f / 6.0f))",
        "activation probe: derivative at -4, -3, ..., 3, 4", absent=("keras", "jax")),
    Difference(
        "keras-kl-divergence-clip", "loss", ("kl_divergence",), {"keras": 5.5e-6},
        "keras.losses.KLDivergence",
        "clips both the targets and the probabilities to [1e-7, 1] before sum y log(y / p), so every zero of a one-hot "
        "target becomes 1e-7 and adds 1e-7 log(1e-7 / p) to the loss (and 1e-7 / p to its gradient), where the "
        "catalog takes 0 log 0 = 0 (torch's F.kl_div, optax's kl_divergence)",
        ("gradients", "trajectory"), "keras/src/losses/losses.py kl_divergence (ops.clip(y_true, epsilon, 1))",
        f"{LOSS_PROBE}, kl_divergence on softmax outputs: relative difference of the loss", absent=("torch", "jax")),
    Difference(
        "torch-normal-initializers-untruncated", "initializer", ("glorot_normal", "he_normal", "lecun_normal"),
        {"torch": 0.023},
        "torch.nn.init.xavier_normal_, kaiming_normal_",
        "draws an untruncated normal of the named variance, where the catalog (Keras, JAX) draws a normal cut at 2 "
        "standard deviations and rescaled to that variance: about 2.3% of torch's values lie beyond the catalog's "
        "largest",
        ("forward",), "torch/nn/init.py xavier_normal_, kaiming_normal_; keras/src/initializers/random_initializers.py "
        "VarianceScaling (truncated_normal, stddev / 0.8796)",
        f"{INITIALIZER_PROBE}, glorot_normal: the share of values beyond the catalog's cut", absent=("keras",)),
    Difference(
        "keras-constant-float32", "initializer", ("constant",), {"keras": 2.2e-8},
        "keras.initializers.Constant",
        "brings its value to the variable through float32 (a float64 model starts from float32(value))",
        ("forward",), "keras/src/initializers/constant_initializers.py Constant (ops.cast of the value)",
        f"{INITIALIZER_PROBE}, constant 0.01: relative difference of the values", absent=("torch", "jax")),
    Difference(
        "torch-cosine-annealing-periodic", "schedule", ("cosine",), {"torch": 1.2},
        "torch.optim.lr_scheduler.CosineAnnealingLR",
        "updates the rate recursively and never stops at T_max: after it the rate climbs back along the cosine "
        "(period 2 T_max), where the catalog (Keras' CosineDecay, optax's cosine_decay_schedule) holds alpha times "
        "the base rate; before T_max they agree to rounding",
        ("trajectory",), "torch/optim/lr_scheduler.py CosineAnnealingLR.get_lr",
        f"{SCHEDULE_PROBE}, cosine, decay_steps 40, alpha 0.1", absent=("jax",)),
    Difference(
        "keras-schedules-float32", "schedule", ("exponential", "inverse_time", "polynomial", "cosine", "piecewise_constant"),
        {"keras": 6.0e-8},
        "keras.optimizers.schedules (ExponentialDecay, InverseTimeDecay, PolynomialDecay, CosineDecay, "
        "PiecewiseConstantDecay)",
        "computes every rate in the dtype of the initial rate, float32 (floatx), whatever the model's dtype",
        ("trajectory",), "keras/src/optimizers/schedules/learning_rate_schedule.py (dtype = initial_learning_rate.dtype)",
        f"{SCHEDULE_PROBE}, exponential, decay_steps 20, decay_rate 0.5", absent=("torch", "jax")),
    Difference(
        "keras-piecewise-constant-after-boundary", "schedule", ("piecewise_constant",), {"keras": 0.10},
        "keras.optimizers.schedules.PiecewiseConstantDecay",
        "switches to the next value only after a boundary (step > b), one step after the catalog and optax's "
        "piecewise_constant_schedule (step >= b; torch's MultiStepLR too)",
        ("trajectory",), "keras/src/optimizers/schedules/learning_rate_schedule.py PiecewiseConstantDecay",
        f"{SCHEDULE_PROBE}, piecewise_constant, boundaries 20 and 40, factors 1, 0.5, 0.25", absent=("torch", "jax")),
    Difference(
        "flax-batch-norm-fast-variance", "batch_norm", (), {"jax": 2.4e-14},
        "flax.linen.BatchNorm",
        "use_fast_variance=True by default: the batch variance is E[x^2] - E[x]^2, which cancels where the mean is "
        "large against the spread (force_float32_reductions, also on by default, leaves float64 alone)",
        ("gradients", "step", "trajectory"), "flax/linen/normalization.py _compute_stats", BATCH_NORM_PROBE),
    Difference(
        "torch-batch-norm-cpu-kernel", "batch_norm", (), {"torch": 6.1e-12},
        "torch.nn.BatchNorm2d (F.batch_norm) on the CPU",
        "the CPU kernel sums the batch statistics one value after another (as a naive float64 sum: 6.1e-12 here, "
        "where a pairwise two-pass sum is 3e-15); in float32 5.7e-7",
        ("gradients", "step", "trajectory"), "measured here (README: traps found while building this)", BATCH_NORM_PROBE),
    Difference(
        "torch-batch-norm-unbiased-running-variance", "batch_norm", (), {"torch": 5.3e-8},
        "torch.nn.BatchNorm2d / BatchNorm1d",
        "updates the running variance with the unbiased batch variance (n / (n - 1) times the biased one the "
        "catalog, Keras and Flax use)",
        ("trajectory",), "torch.nn.BatchNorm2d documentation", RUNNING_PROBE, absent=("keras",)),
    Difference(
        "flax-batch-norm-float32-running-statistics", "batch_norm", (), {"jax": 9.6e-9},
        "flax.linen.BatchNorm",
        "creates its running mean and variance as float32 whatever dtype and param_dtype say, so a float64 model's "
        "first update multiplies them by the momentum in float32",
        ("trajectory",), "flax/linen/normalization.py (batch_stats initialised with jnp.float32)", RUNNING_PROBE),
    Difference(
        "tf-batch-norm-moments", "batch_norm", (), {"keras": 2.9e-12},
        "keras.layers.BatchNormalization (tf.nn.moments)",
        "reduces the batch statistics over the outer axes (2.9e-12 here in float64) and in float32 computes the "
        "variance from E[x^2] - E[x]^2 (1.4e-3 here)",
        ("gradients", "step", "trajectory"), "measured here (README: traps found while building this)", BATCH_NORM_PROBE),
)

BY_ID = {difference.id: difference for difference in DIFFERENCES}


def differences_for(framework: str, component: str, entry: str | None = None) -> list[Difference]:
    """The known differences of `framework`'s built-in `component` (for the catalog `entry`), in catalog order."""
    return [difference for difference in DIFFERENCES if difference.concerns(framework, component, entry)]
