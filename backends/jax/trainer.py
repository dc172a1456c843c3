"""The JAX backend's Trainer: a Flax linen model and an Optax transform, each epoch one jitted lax.scan."""

import os

# XLA reads XLA_FLAGS once, when its backend starts: ask for deterministic GPU kernels before
# jax is imported (no effect if some other module already ran a JAX computation).
_GPU_DETERMINISM = "--xla_gpu_deterministic_ops=true"
if "xla_gpu_deterministic_ops" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_GPU_DETERMINISM}".strip()

import functools  # noqa: E402
import math  # noqa: E402
from collections import Counter  # noqa: E402
from importlib.metadata import version  # noqa: E402
from typing import Any, Sequence  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from backends.base import StepStats, check_epoch_arguments, check_eval_arguments, no_logits  # noqa: E402
from backends.jax import losses, optimizers, weights  # noqa: E402
from backends.jax.model import PlanModel  # noqa: E402
from experiments.spec import plan as P  # noqa: E402
from experiments.spec.plan import Conv2D, parameter_info  # noqa: E402
from experiments.threads import seen_settings  # noqa: E402

# Process-wide, set once: float64 becomes possible (every array still gets an explicit dtype,
# so float32 trainers stay float32), and matmuls/convs run at full precision on every device.
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_default_matmul_precision", "highest")


@functools.cache
def _initializer(plan: tuple, dtype_name: str):
    """PlanModel.init compiled once per plan and dtype: rngs -> variables (run on a zero sample).

    Compiled at XLA's optimisation level 0: it runs once, and compiles ~5x faster (threefry
    dominates). The draws can differ from an -O3 or eager build in the last bit (FMA
    contraction), which is still a draw from the same distribution with the same seed.
    """
    dtype = np.dtype(dtype_name)
    sample = jnp.zeros((1, *plan[0].input_shape), dtype)
    init = jax.jit(PlanModel(plan=plan, dtype=dtype).init, static_argnames="train")
    lowered = init.lower({"params": jax.random.key(0)}, sample, train=False)
    compiled = lowered.compile({"xla_backend_optimization_level": 0})
    return lambda rngs: compiled(rngs, sample)


def _loss_or_deferred_error(loss, output_activation):
    """The per-example loss; for a pairing the catalog leaves undefined (cross-entropy of a step
    or sign output) a function that raises when used, so the model still builds for forward checks."""
    try:
        return losses.per_example_loss(loss, output_activation)
    except ValueError as error:
        message = str(error)

        def undefined(z, y):
            raise ValueError(message)

        return undefined


def _split(array: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Array (N, ...) as [(N // B, B, ...), (1, N % B, ...)], the second only when N % B > 0."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    full = len(array) // batch_size * batch_size
    parts = [array[:full].reshape(full // batch_size, batch_size, *array.shape[1:])] if full else []
    if full < len(array):
        parts.append(array[full:][None])
    return parts


class Trainer:
    """One Flax model (from the plan) and its Optax state; the contract in backends.base.

    Dtypes are explicit everywhere (Flax dtype and param_dtype, inputs, rates), so float32 and
    float64 trainers coexist in one process under jax_enable_x64. State is one pytree
    (params, batch_stats, opt_state); the training set stays on the device and each step
    gathers its batch there. Per-step rates and noise keys (fold_in(key, global step), split
    into the dropout and rrelu keys) are data, so nothing retraces across epochs; so is injected
    noise (train_epoch's and loss_and_gradients' `noise`: dropout multipliers and rrelu slopes
    given per step, stacked along the scan), which only adds its own trace;
    `trace_counts` counts traces (for tests). A binary task (one output) counts a sample as
    correct when (logit > 0) == (y > 0.5), the digit task when the argmaxes agree.

    An epoch's full-size batches run as one jitted lax.scan over stacked indices (S, B), the
    last partial batch as a scan of length 1. Exception: on CPU, a plan with convolutions
    steps through one jitted step per batch instead, because XLA:CPU leaves convolutions
    inside a loop body (a scan) on a slow generic path: the seed CNN trains ~8x slower in a
    scan (jax-ml/jax#12868, measured with jax 0.10.2).
    """

    def __init__(self, spec, plan, threads: int) -> None:
        self._spec, self._plan, self._threads = spec, tuple(plan), threads
        self._dtype = np.dtype(spec.dtype)
        self._info = parameter_info(self._plan)
        self._model = PlanModel(plan=self._plan, dtype=self._dtype)
        init_key, self._noise_key = jax.random.split(jax.random.key(spec.seed))
        variables = _initializer(self._plan, self._dtype.name)({"params": init_key})
        weights.check_layout(variables, self._info, self._dtype)
        self._loss = _loss_or_deferred_error(spec.loss, spec.model.output_activation)
        self._tx = optimizers.direction(spec.optimizer, self._dtype)
        params = variables["params"]
        self._state = (params, variables.get("batch_stats", {}), self._tx.init(params))
        self._steps_done = 0
        self._x = self._y = None
        self.trace_counts: Counter[str] = Counter()
        self._scan = jax.default_backend() != "cpu" or not any(isinstance(layer, Conv2D) for layer in self._plan)
        self._epoch = jax.jit(self._epoch_fn)
        self._step = jax.jit(self._step_fn)
        self._evaluate = jax.jit(self._evaluate_fn)
        self._logits = jax.jit(self._logits_fn)
        self._gradients = jax.jit(self._gradients_fn)
        self._outputs = jax.jit(self._outputs_fn)
        self._apply = jax.jit(functools.partial(optimizers.step, self._tx))
        self._noisy = tuple(layer for layer in self._plan if isinstance(layer, P.Dropout)
                            or (isinstance(layer, P.Activation) and layer.activation.name == "rrelu"))

    # -- compiled functions --------------------------------------------------------------
    def _loss_and_gradients(self, params, batch_stats, x, y, key, noise):
        """Train-mode mean loss, d loss / d params, logits and the updated batch statistics.

        noise None: the dropout and rrelu layers draw from the keys split from `key`; else the
        injected {layer name: array} is used and `key` is ignored."""
        dropout_key, rrelu_key = jax.random.split(key)

        def objective(params):
            logits, updated = self._model.apply(
                {"params": params, "batch_stats": batch_stats}, x, train=True, noise=noise,
                rngs={"dropout": dropout_key, "rrelu": rrelu_key}, mutable=["batch_stats"],
            )
            return jnp.mean(self._loss(logits, y)), (logits, updated.get("batch_stats", {}))

        (loss, (logits, batch_stats)), grads = jax.value_and_grad(objective, has_aux=True)(params)
        return loss, grads, logits, batch_stats

    def _train_step(self, state, x, y, learning_rate, key, noise=None):
        """One optimizer step on a batch; returns the new state, the batch's mean loss and correct count."""
        params, batch_stats, opt_state = state
        loss, grads, logits, batch_stats = self._loss_and_gradients(params, batch_stats, x, y, key, noise)
        params, opt_state = optimizers.step(self._tx, params, grads, opt_state, learning_rate)
        correct = jnp.sum(losses.correct(logits, y))
        return (params, batch_stats, opt_state), (loss, correct)

    def _indexed_step(self, state, data_x, data_y, idx, learning_rate, step, noise, noise_key):
        """One step on the training-set rows idx (B,), with the noise key of global step `step`
        (split into the dropout and rrelu keys of that step), or the step's injected noise."""
        key = jax.random.fold_in(noise_key, step)
        return self._train_step(state, data_x[idx], data_y[idx], learning_rate, key, noise)

    def _epoch_fn(self, state, data_x, data_y, indices, learning_rates, steps, noise, noise_key):
        """Steps over indices (S, B), learning_rates (S,), global step numbers (S,) and injected
        noise (None, or {layer: (S, B, ...)}), as one lax.scan."""
        self.trace_counts["train"] += 1

        def body(state, inputs):
            return self._indexed_step(state, data_x, data_y, *inputs, noise_key)

        return lax.scan(body, state, (indices, learning_rates, steps, noise))

    def _step_fn(self, state, data_x, data_y, idx, learning_rate, step, noise, noise_key):
        """One step, compiled on its own (the CPU convolution path, see the class docstring)."""
        self.trace_counts["step"] += 1
        return self._indexed_step(state, data_x, data_y, idx, learning_rate, step, noise, noise_key)

    def _gradients_fn(self, params, batch_stats, x, y, key, noise):
        """(mean loss, grads) in train mode; the new batch statistics are dropped."""
        self.trace_counts["gradients"] += 1
        loss, grads, _, _ = self._loss_and_gradients(params, batch_stats, x, y, key, noise)
        return loss, grads

    def _outputs_fn(self, variables, x):
        """Eval-mode output of every plan layer, by layer name."""
        self.trace_counts["outputs"] += 1
        return self._model.apply(variables, x, train=False, outputs=True)[1]

    def _evaluate_fn(self, variables, xb, yb):
        """Per-sample eval-mode loss and correctness for batches xb (S, B, ...) and yb (S, B, C)."""
        self.trace_counts["evaluate"] += 1

        def batch(xy):
            logits = self._model.apply(variables, xy[0], train=False)
            return self._loss(logits, xy[1]), losses.correct(logits, xy[1])

        return lax.map(batch, (xb, yb))

    def _logits_fn(self, variables, xb):
        """Eval-mode logits (S, B, C) for batches xb (S, B, ...)."""
        self.trace_counts["logits"] += 1
        return lax.map(lambda x: self._model.apply(variables, x, train=False), xb)

    # -- the contract --------------------------------------------------------------------
    def versions(self) -> dict[str, str]:
        return {name: version(name) for name in ("jax", "jaxlib", "flax", "optax")}

    def settings(self) -> dict[str, object]:
        """Threads cannot be set here: XLA's CPU thread pool is fixed when its backend starts.

        thread_environment is the worker's OpenMP/MKL environment as this process sees it; XLA's
        CPU runtime uses its own thread pool and does not read it (listed so every backend's
        record shows what its process ran with).
        """
        device = jax.devices()[0]
        return {
            "threads_requested": self._threads,
            "threads_applied": "not settable after XLA starts; see xla_flags and cpu_count",
            "cpu_count": os.cpu_count(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "thread_environment": seen_settings(),
            "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
            "jax_enable_x64": bool(jax.config.jax_enable_x64),
            "layer_precision": "HIGHEST",
            "platform": device.platform,
            "device": device.device_kind,
            "dtype": self._dtype.name,
            "batch_norm_variance": "two-pass (use_fast_variance=False)",
            "noise_keys": f"{jax.config.jax_default_prng_impl}: per step fold_in(split(key(seed))[1], step), "
                          "split into the dropout and rrelu keys (unless noise is injected)",
            "train_loop": "lax.scan per epoch" if self._scan else "one jitted step per batch (XLA:CPU convolutions)",
        }

    def parameter_count(self) -> int:
        return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(self._state[0]))

    def get_weights(self) -> dict[str, np.ndarray]:
        params, batch_stats, _ = self._state
        return weights.to_canonical({"params": params, "batch_stats": batch_stats}, self._info)

    def set_weights(self, canonical: dict[str, np.ndarray]) -> None:
        """Replace parameters and running statistics; the optimizer state is kept (as torch and Keras do)."""
        variables = weights.from_canonical(canonical, self._info, self._dtype)
        params = jax.device_put(variables["params"])
        batch_stats = jax.device_put(variables.get("batch_stats", {}))
        self._state = (params, batch_stats, self._state[2])

    def load_training_data(self, x: np.ndarray, y: np.ndarray) -> None:
        self._x, self._y = (jax.device_put(a) for a in self._inputs(x, y))

    def train_epoch(self, batches: Sequence[np.ndarray], learning_rates: np.ndarray,
                    noise: Sequence[dict] | None = None) -> StepStats:
        """noise: None (per-step keys), or one {noisy layer name: (B_i, ...)} dict per step, fed to
        the scan (stacked) or the per-step function as data."""
        rates = check_epoch_arguments(batches, learning_rates, noise, None if self._x is None else len(self._x))
        batches = [np.asarray(batch) for batch in batches]
        if not batches:
            return StepStats(np.zeros(0, np.float64), np.zeros(0, np.int64))
        size = len(batches[0])
        full = len(batches) if len(batches[-1]) == size else len(batches) - 1
        if noise is not None:
            noise = [self._noise(step_noise, len(batch)) for step_noise, batch in zip(noise, batches)]
        indices = [batch.astype(np.int32) for batch in batches]
        rates = rates.astype(self._dtype)
        steps = np.arange(self._steps_done, self._steps_done + len(batches), dtype=np.uint32)
        results = []
        if self._scan:
            for part in (slice(0, full), slice(full, len(batches))):
                if part.start < part.stop:
                    stacked = None if noise is None else {
                        name: np.stack([step_noise[name] for step_noise in noise[part]]) for name in noise[0]}
                    inputs = np.stack(indices[part]), rates[part], steps[part], stacked
                    self._state, result = self._epoch(self._state, self._x, self._y, *inputs, self._noise_key)
                    results.append(result)
        else:
            for i, inputs in enumerate(zip(indices, rates, steps)):
                step_noise = None if noise is None else noise[i]
                self._state, result = self._step(self._state, self._x, self._y, *inputs, step_noise, self._noise_key)
                results.append(result)
        self._steps_done += len(batches)
        loss = np.concatenate([np.ravel(r[0]) for r in results]).astype(np.float64)
        correct = np.concatenate([np.ravel(r[1]) for r in results]).astype(np.int64)
        return StepStats(loss, correct)

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[float, float]:
        check_eval_arguments("evaluate", x, y, batch_size)
        x, y = self._inputs(x, y)
        variables = self._variables()
        outputs = [self._evaluate(variables, xb, yb) for xb, yb in zip(_split(x, batch_size), _split(y, batch_size))]
        loss = np.concatenate([np.asarray(o[0], np.float64).ravel() for o in outputs])
        correct = np.concatenate([np.asarray(o[1]).ravel() for o in outputs])
        return float(loss.mean()), float(correct.mean())

    def predict_logits(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        if check_eval_arguments("predict_logits", x, None, batch_size) == 0:
            return no_logits(self._plan, self._dtype)
        x = self._inputs(x)[0]
        variables = self._variables()
        outputs = [self._logits(variables, xb) for xb in _split(x, batch_size)]
        return np.concatenate([np.asarray(o).reshape(-1, o.shape[-1]) for o in outputs])

    def layer_outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Eval-mode output of every plan layer (already NHWC; flatten in (H, W, C) order), spec.dtype."""
        outputs = self._outputs(self._variables(), self._inputs(x)[0])
        return {layer.name: np.asarray(outputs[layer.name]) for layer in self._plan}

    def loss_and_gradients(self, x: np.ndarray, y: np.ndarray, noise: dict | None = None) -> tuple[float, dict[str, np.ndarray]]:
        """Train-mode mean loss and gradients by canonical name; params, batch_stats and the
        optimizer state are untouched. noise None draws with the key the next train step would use."""
        x, y = self._inputs(x, y)
        if noise is not None:
            noise = self._noise(noise, len(x))
        params, batch_stats, _ = self._state
        key = jax.random.fold_in(self._noise_key, np.uint32(self._steps_done))
        loss, grads = self._gradients(params, batch_stats, x, y, key, noise)
        return float(loss), weights.to_canonical({"params": grads}, self._trainable())

    def apply_gradients(self, gradients: dict[str, np.ndarray], learning_rate: float) -> None:
        trainable = self._trainable()
        grads = weights.from_canonical(gradients, trainable, self._dtype, "apply_gradients")["params"]
        params, batch_stats, opt_state = self._state
        params, opt_state = self._apply(params, grads, opt_state, jnp.asarray(learning_rate, self._dtype))
        self._state = (params, batch_stats, opt_state)
        self._steps_done += 1

    def optimizer_state(self) -> dict[str, dict[str, np.ndarray]]:
        """The used slots per trainable parameter (see optimizers.slots); {} before the first step."""
        if self._steps_done == 0:
            return {}
        slots = {slot: weights.to_canonical({"params": tree}, self._trainable())
                 for slot, tree in optimizers.slots(self._spec.optimizer, self._state[2]).items()}
        return {name: {slot: values[name] for slot, values in slots.items()} for name in self._trainable()}

    # -- helpers -------------------------------------------------------------------------
    def _trainable(self) -> dict:
        return {name: info for name, info in self._info.items() if info.trainable}

    def _noise(self, noise: dict, batch: int) -> dict[str, np.ndarray]:
        """One step's injected noise as spec.dtype arrays, checked: exactly the noisy layers, (batch, *input_shape)."""
        names = {layer.name for layer in self._noisy}
        if set(noise) != names:
            raise ValueError(f"noise must give exactly the noisy layers {sorted(names)}, got {sorted(noise)}")
        out = {}
        for layer in self._noisy:
            value = np.asarray(noise[layer.name], dtype=self._dtype)
            if value.shape != (batch, *layer.input_shape):
                raise ValueError(f"{layer.name}: noise of shape {value.shape}, expected {(batch, *layer.input_shape)}")
            out[layer.name] = value
        return out

    def _variables(self) -> dict[str, Any]:
        return {"params": self._state[0], "batch_stats": self._state[1]}

    def _inputs(self, x: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """x (N, H, W, C) and y (N, C) (one-hot, or 0/1 with C = 1) as spec.dtype NumPy arrays, shapes checked."""
        x = np.asarray(x, dtype=self._dtype)
        if x.ndim != 4 or x.shape[1:] != tuple(self._plan[0].input_shape) or len(x) == 0:
            raise ValueError(f"x must have shape (N>0, {', '.join(map(str, self._plan[0].input_shape))}), got {x.shape}")
        if y is None:
            return (x,)
        y = np.asarray(y, dtype=self._dtype)
        if y.shape != (len(x), self._plan[-1].units):
            raise ValueError(f"y must have shape ({len(x)}, {self._plan[-1].units}), got {y.shape}")
        return x, y
