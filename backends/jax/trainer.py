"""The JAX backend's Trainer: a Flax linen model and an Optax transform, each epoch one jitted lax.scan."""

import functools
import math
from collections import Counter

import numpy as np

from backends import base
from backends.jax import activations, framework, losses, optimizers, weights
from backends.jax.framework import jax, jnp, lax
from backends.jax.model import PlanModel
from experiments.spec.plan import Activation, BatchNormalization, Conv2D, Dense, Dropout, MaxPool2D


def compiled(method):
    """The method jax.jit-compiled once per trainer, under the method's own name (`self` is static): it traces
    again only for new shapes, dtypes or pytree structures, counted by the method in trace_counts."""
    return functools.cached_property(lambda self: jax.jit(functools.partial(method, self)))


@functools.cache
def _initializer(plan: tuple, dtype_name: str, native: frozenset = frozenset()):
    """PlanModel.init compiled once per plan and dtype: rngs -> variables (run on a zero sample).

    Compiled at XLA's optimisation level 0: it runs once, and compiles ~5x faster (threefry dominates). The draws
    can differ from an -O3 or eager build in the last bit (FMA contraction), which is still a draw from the same
    distribution with the same seed.
    """
    dtype = np.dtype(dtype_name)
    sample = jnp.zeros((1, *plan[0].input_shape), dtype)
    init = jax.jit(PlanModel(plan=plan, dtype=dtype, native=native).init, static_argnames="train")
    lowered = init.lower({"params": jax.random.key(0)}, sample, train=False)
    compiled_init = lowered.compile({"xla_backend_optimization_level": 0})
    return lambda rngs: compiled_init(rngs, sample)


def _loss_or_deferred_error(loss, output_activation, native: bool = False):
    """make_loss (make_native_loss when native); for a pairing the catalog leaves undefined (cross-entropy of a step or sign output) a function
    that raises when used, so the model still builds for forward checks."""
    try:
        return (losses.make_native_loss if native else losses.make_loss)(loss, output_activation)
    except ValueError as error:
        message = str(error)

        def undefined(z, y):
            raise ValueError(message)

        return undefined


def _split(array: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Array (N, ...) as [(N // B, B, ...), (1, N % B, ...)], the second only when N % B > 0."""
    full = len(array) // batch_size * batch_size
    parts = [array[:full].reshape(full // batch_size, batch_size, *array.shape[1:])] if full else []
    if full < len(array):
        parts.append(array[full:][None])
    return parts


class Trainer(base.Trainer):
    """One Flax model (from the plan) and its Optax state: JAX's half of backends.base.Trainer.

    Dtypes are explicit everywhere (Flax dtype and param_dtype, inputs, rates), so float32 and float64 trainers
    coexist in one process under jax_enable_x64. State is one pytree (params, batch_stats, opt_state); the training
    set stays on the device and each step gathers its batch there. Per-step rates and noise keys (fold_in(key,
    global step), split into the dropout and rrelu keys) are data, so nothing retraces across epochs; so is
    injected noise (stacked along the scan), which only adds its own trace. `trace_counts` counts traces (for tests).

    An epoch's full-size batches run as one jitted lax.scan over stacked indices (S, B), the last partial batch as
    a scan of length 1. Exception: on CPU, a plan with convolutions steps through one jitted step per batch
    instead, because XLA:CPU leaves convolutions inside a loop body (a scan) on a slow generic path: the seed CNN
    trains ~8x slower in a scan (jax-ml/jax#12868, measured with jax 0.10.2).

    implementation "native": the optimizer is optax's alias under optax.inject_hyperparams (the per-step rate is
    written into its state: optimizers.native_step), clipping optax.clip_by_global_norm, the loss optax's
    (losses.make_native_loss), and the model's components Flax's and jax.nn's (PlanModel.native); whatever has no
    built-in stays on the catalog and is named in native_fallbacks. Catalog mode is untouched.
    """

    def __init__(self, spec, plan, threads: int) -> None:
        super().__init__(spec, plan, threads)
        native = self._native_components()
        self.model = PlanModel(plan=self.plan, dtype=self.dtype, native=native)
        init_key, self.noise_key = jax.random.split(jax.random.key(spec.seed))
        variables = _initializer(self.plan, self.dtype.name, native)({"params": init_key})
        if "batch_norm" in native:  # nn.BatchNorm (force_float32_reductions) starts its running statistics as
            # float32 zeros and ones and promotes them to a float64 model's dtype at the first update: held in
            # spec.dtype from the start (the same values), so the train state keeps one type and nothing retraces
            variables = {**variables, "batch_stats": jax.tree.map(lambda v: v.astype(self.dtype), variables["batch_stats"])}
        weights.check_layout(variables, self.info, self.dtype)
        if self.native("loss", available=losses.has_native_loss(spec.loss, spec.model.output_activation)):
            self.loss = _loss_or_deferred_error(spec.loss, spec.model.output_activation, native=True)
        else:
            self.loss = _loss_or_deferred_error(spec.loss, spec.model.output_activation)
        native_optimizer = self.native("optimizer")
        native_clipping = spec.optimizer.clip_global_norm is not None and self.native("clipping")
        self.tx = optimizers.make_optimizer(spec.optimizer, self.dtype, native_optimizer, native_clipping)
        self._optimizer_step = optimizers.native_step if native_optimizer else optimizers.step
        params = variables["params"]
        self._state = (params, variables.get("batch_stats", {}), self.tx.init(params))
        self.x = self.y = None
        self.trace_counts: Counter[str] = Counter()
        self._scan = jax.default_backend() != "cpu" or not any(isinstance(layer, Conv2D) for layer in self.plan)

    def _native_components(self) -> frozenset:
        """The model components built from Flax / jax.nn (implementation "native"): "batch_norm", "dropout",
        "pooling", "initializer" and "activation:<name>" for each plan activation jax.nn or Flax has a built-in for;
        the others fall back to the catalog and are named in native_fallbacks. Empty in catalog mode."""
        chosen = set()
        for layer in self.plan:
            if isinstance(layer, BatchNormalization) and self.native("batch_norm"):
                chosen.add("batch_norm")
            elif isinstance(layer, Dropout) and self.native("dropout"):
                chosen.add("dropout")
            elif isinstance(layer, MaxPool2D) and self.native("pooling"):
                chosen.add("pooling")
            elif isinstance(layer, Activation):
                entry = layer.activation
                if self.native("activation", entry.name, available=activations.has_native(entry)):
                    chosen.add(f"activation:{entry.name}")
            if isinstance(layer, (Dense, Conv2D)) and self.native(
                    "initializer", available=weights.has_native_initializers(self.plan)):
                chosen.add("initializer")
        return frozenset(chosen)

    # -- traced code ---------------------------------------------------------------------
    def forward_backward(self, params, batch_stats, x, y, key, noise):
        """Train-mode mean loss, its gradients, the logits and the updated batch statistics.

        noise None: the dropout and rrelu layers draw from the keys split from `key`; else the injected
        {layer name: array} is used and `key` is ignored."""
        dropout_key, rrelu_key = jax.random.split(key)

        def objective(params):
            logits, updated = self.model.apply(
                {"params": params, "batch_stats": batch_stats}, x, train=True, noise=noise,
                rngs={"dropout": dropout_key, "rrelu": rrelu_key}, mutable=["batch_stats"],
            )
            return jnp.mean(self.loss(logits, y)), (logits, updated.get("batch_stats", {}))

        (loss, (logits, batch_stats)), grads = jax.value_and_grad(objective, has_aux=True)(params)
        return loss, grads, logits, batch_stats

    def train_step(self, state, data_x, data_y, idx, learning_rate, step, noise, noise_key):
        """One optimizer step on the training-set rows idx (B,) with the noise key of global step `step` (or the
        step's injected noise); returns the new state and the batch's (mean loss, correct count)."""
        params, batch_stats, opt_state = state
        x, y = data_x[idx], data_y[idx]
        key = jax.random.fold_in(noise_key, step)
        loss, grads, logits, batch_stats = self.forward_backward(params, batch_stats, x, y, key, noise)
        params, opt_state = self._optimizer_step(self.tx, params, grads, opt_state, learning_rate)
        return (params, batch_stats, opt_state), (loss, jnp.sum(losses.correct(logits, y)))

    # -- compiled functions --------------------------------------------------------------
    @compiled
    def _scan_steps(self, state, data_x, data_y, indices, learning_rates, steps, noise, noise_key):
        """train_step over indices (S, B), rates (S,), global step numbers (S,) and injected noise (None, or
        {layer: (S, B, ...)}), as one lax.scan."""
        self.trace_counts["train"] += 1

        def body(state, inputs):
            return self.train_step(state, data_x, data_y, *inputs, noise_key)

        return lax.scan(body, state, (indices, learning_rates, steps, noise))

    @compiled
    def _one_step(self, state, data_x, data_y, idx, learning_rate, step, noise, noise_key):
        """train_step compiled on its own (the CPU convolution path, see the class docstring)."""
        self.trace_counts["step"] += 1
        return self.train_step(state, data_x, data_y, idx, learning_rate, step, noise, noise_key)

    @compiled
    def _gradients(self, params, batch_stats, x, y, key, noise):
        """forward_backward's (mean loss, gradients); the new batch statistics are dropped."""
        self.trace_counts["gradients"] += 1
        return self.forward_backward(params, batch_stats, x, y, key, noise)[:2]

    @compiled
    def _update(self, params, grads, opt_state, learning_rate):
        return self._optimizer_step(self.tx, params, grads, opt_state, learning_rate)

    @compiled
    def _outputs(self, variables, x):
        self.trace_counts["outputs"] += 1
        return self.model.apply(variables, x, train=False, outputs=True)[1]

    @compiled
    def _eval(self, variables, xb, yb):
        """Eval-mode logits (S, B, C) of batches xb (S, B, ...) and, for yb (S, B, C), the per-sample losses."""
        self.trace_counts["logits" if yb is None else "evaluate"] += 1

        def batch(xy):
            logits = self.model.apply(variables, xy[0], train=False)
            return logits, None if xy[1] is None else self.loss(logits, xy[1])

        return lax.map(batch, (xb, yb))

    # -- the framework's half of backends.base.Trainer -------------------------------------
    def versions(self) -> dict[str, str]:
        return framework.versions()

    def settings(self) -> dict[str, object]:
        settings = framework.settings(self.threads, self.dtype, self._scan)
        if "batch_norm" in self.model.native:
            settings["batch_norm_variance"] = "Flax's defaults: one-pass (use_fast_variance=True), force_float32_reductions=True"
        return settings

    def parameter_count(self) -> int:
        return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(self._state[0]))

    def get_weights(self) -> dict[str, np.ndarray]:
        return weights.to_canonical(self._variables(), self.info)

    def _set_weights(self, canonical: dict[str, np.ndarray]) -> None:
        variables = weights.from_canonical(canonical)
        params = jax.device_put(variables["params"])
        batch_stats = jax.device_put(variables.get("batch_stats", {}))
        self._state = (params, batch_stats, self._state[2])

    def _load_training_data(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = jax.device_put(x), jax.device_put(y)

    def _train_epoch(self, batches, rates, noise) -> base.StepStats:
        """The scan (noise stacked) or one compiled step per batch; steps are numbered from steps_done."""
        full = len(batches) if len(batches[-1]) == len(batches[0]) else len(batches) - 1
        indices = [batch.astype(np.int32) for batch in batches]
        rates = rates.astype(self.dtype)
        steps = np.arange(self.steps_done, self.steps_done + len(batches), dtype=np.uint32)
        results = []
        if self._scan:
            for part in (slice(0, full), slice(full, len(batches))):
                if part.start < part.stop:
                    stacked = None if noise is None else {
                        name: np.stack([step_noise[name] for step_noise in noise[part]]) for name in noise[0]}
                    inputs = np.stack(indices[part]), rates[part], steps[part], stacked
                    self._state, result = self._scan_steps(self._state, self.x, self.y, *inputs, self.noise_key)
                    results.append(result)
        else:
            for i, inputs in enumerate(zip(indices, rates, steps)):
                step_noise = None if noise is None else noise[i]
                self._state, result = self._one_step(self._state, self.x, self.y, *inputs, step_noise, self.noise_key)
                results.append(result)
        loss = np.concatenate([np.ravel(r[0]) for r in results])
        correct = np.concatenate([np.ravel(r[1]) for r in results])
        return base.StepStats(loss, correct)

    def _eval_batches(self, x, y, batch_size):
        variables = self._variables()
        xs = _split(x, batch_size)
        ys = [None] * len(xs) if y is None else _split(y, batch_size)
        outputs = [self._eval(variables, xb, yb) for xb, yb in zip(xs, ys)]
        logits = np.concatenate([np.asarray(o[0]).reshape(-1, o[0].shape[-1]) for o in outputs])
        return logits, None if y is None else np.concatenate([np.asarray(o[1]).ravel() for o in outputs])

    def _layer_outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self._outputs(self._variables(), x)
        return {layer.name: np.asarray(outputs[layer.name]) for layer in self.plan}

    def _loss_and_gradients(self, x, y, noise):
        """noise None draws with the key the next train step would use (nothing is consumed)."""
        params, batch_stats, _ = self._state
        key = jax.random.fold_in(self.noise_key, np.uint32(self.steps_done))
        loss, grads = self._gradients(params, batch_stats, x, y, key, noise)
        return loss, weights.to_canonical({"params": grads}, self.trainable_names)

    def _native_schedule(self, steps_per_epoch: int):
        return optimizers.native_schedule(self.spec.schedule, self.spec.optimizer.learning_rate, steps_per_epoch)

    def _apply_gradients(self, gradients: dict[str, np.ndarray], learning_rate: float) -> None:
        params, batch_stats, opt_state = self._state
        grads = weights.from_canonical(gradients)["params"]
        params, opt_state = self._update(params, grads, opt_state, jnp.asarray(learning_rate, self.dtype))
        self._state = (params, batch_stats, opt_state)

    def _optimizer_state(self) -> dict[str, dict[str, np.ndarray]]:
        slots = {slot: weights.to_canonical({"params": tree}, self.trainable_names)
                 for slot, tree in optimizers.state_slots(self.spec.optimizer, self._state[2]).items()}
        return {name: {slot: values[name] for slot, values in slots.items()} for name in self.trainable_names}

    def _variables(self) -> dict:
        return {"params": self._state[0], "batch_stats": self._state[1]}
