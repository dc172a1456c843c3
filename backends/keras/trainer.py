"""Keras 3 (TensorFlow backend) Trainer: the plan as a Keras model, trained by a tf.function epoch loop."""

import os

os.environ["KERAS_BACKEND"] = "tensorflow"  # before keras is imported (backends.keras.framework checks it)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from backends import base  # noqa: E402
from backends.keras import framework  # noqa: E402
from backends.keras.activations import leaky  # noqa: E402
from backends.keras.framework import tf  # noqa: E402
from backends.keras.losses import NATIVE_OUTPUTS, make_loss, native_loss  # noqa: E402
from backends.keras.model import build_model  # noqa: E402
from backends.keras.optimizers import (apply_gradients, make_optimizer, native_schedule, optimizer_slots,  # noqa: E402
                                       set_learning_rate)
from backends.keras.weights import BATCH_NORM_NAMES, canonical_variables  # noqa: E402
from experiments.spec import plan as P  # noqa: E402


class Trainer(base.Trainer):
    """One Keras model and its optimizer (see backends.base).

    A whole epoch is one call of a tf.function: a tf.while_loop that gathers each batch from
    the training set (held as tensors) and calls the step function, itself a tf.function.
    Input signatures have open dimensions, so each is traced once. The step is XLA-compiled
    (jit_compile; one compilation per batch size) only for plans without convolutions: on
    CPU, XLA fuses an MLP's many small ops (about 2x faster) but runs the CNN ~25x slower.

    The forward pass (`_forward`) runs the Keras layers one by one in plan order (what the
    Sequential model does), so that given noise can replace a layer's own draw: a dropout layer
    then multiplies by the given mask and an rrelu layer uses the given slopes (the same
    `leaky` as RReLU.call). The step, the epoch loop and the gradients are each compiled twice,
    with the noise as data (one tensor per noisy layer, "noisy ...") and without (the layers draw).

    implementation "native": each component is Keras' own built-in where Keras has one, built with the spec's values
    and Keras' defaults for the rest (optimizer and clipping: backends.keras.optimizers.native_optimizer; loss:
    losses.native_loss; batch norm, pooling, dropout, activations: model.native_layer; initializers:
    weights.native_initializer); what Keras has none for stays the catalog's and is named in native_fallbacks.
    Keras' PReLU keeps alpha as (1, 1, C) in a CNN: weights, gradients and optimizer state are reshaped to the
    canonical (C,) / (1,).
    """

    def __init__(self, spec, plan, threads: int) -> None:
        super().__init__(spec, plan, threads)
        self.tensor_dtype = tf.as_dtype(spec.dtype)
        self.thread_settings = framework.configure_threads(threads)
        self.model = build_model(self.plan, spec.dtype, spec.seed, self.native if spec.implementation == "native" else None)
        self._variables = canonical_variables(self.plan, self.model)
        native_optimizer, native_clipping = self.native("optimizer"), self.native("clipping")
        self.optimizer = make_optimizer(spec.optimizer, native=native_optimizer, native_clipping=native_clipping)
        # a built-in optimizer with the catalog's clipping: the catalog's clip before Keras' apply
        self.catalog_clip = spec.optimizer.clip_global_norm if native_optimizer and not native_clipping else None
        self.optimizer.build(self.model.trainable_variables)
        self.loss = self._make_loss()
        self.x = self.y = None
        self._layers = [(layer, self.model.get_layer(layer.name)) for layer in self.plan]
        self._seed_generators = [
            generator for layer in self.noisy_layers
            if (generator := getattr(self.model.get_layer(layer.name), "seed_generator", None)) is not None
        ]
        self._running = [
            self._variables[f"{layer.name}/{BATCH_NORM_NAMES[name]}"]
            for layer in self.plan if isinstance(layer, P.BatchNormalization) for name in ("moving_mean", "moving_variance")
        ]
        images = tf.TensorSpec((None, *self.plan[0].input_shape), self.tensor_dtype)
        labels = tf.TensorSpec((None, self.plan[-1].units), self.tensor_dtype)
        noise = tuple(tf.TensorSpec((None, *layer.input_shape), self.tensor_dtype) for layer in self.noisy_layers)
        indices = tf.TensorSpec((None,), tf.int64)
        rate, rates = tf.TensorSpec((), tf.float64), tf.TensorSpec((None,), tf.float64)
        self.jit_compile = not any(isinstance(layer, P.Conv2D) for layer in self.plan)
        self.compiled, self.trace_counts = {}, {}  # by the same names; a count grows only while tracing
        self._compile("step", self._step, [images, labels, rate], self.jit_compile)
        self._compile("noisy step", self._step, [images, labels, rate, noise], self.jit_compile)
        self._compile("epoch", self._epoch, [images, labels, indices, indices, rates])
        self._compile("noisy epoch", self._epoch, [images, labels, indices, indices, rates, noise])
        self._compile("gradients", self._gradients, [images, labels], self.jit_compile)
        self._compile("noisy gradients", self._gradients, [images, labels, noise], self.jit_compile)
        self._compile("layer outputs", lambda x: self._forward(x, training=False, outputs=True)[1], [images])
        self._compile("logits", lambda x: self._forward(x, training=False), [images])
        self._compile("losses", self.loss, [labels, labels])  # (logits, y), both (N, C)

    def _make_loss(self):
        """The per-sample loss: Keras' built-in in native mode where it has one (backends.keras.losses.native_loss;
        mse's output activation keras.activations' where native), else the catalog's."""
        loss, output = self.spec.loss, self.spec.model.output_activation
        if self.spec.uses_native("loss"):
            activation = loss.name == "mse" and self.native("activation", output.name, available=output.name in NATIVE_OUTPUTS)
            built_in = native_loss(loss, output, self.spec.dtype, activation)
            if self.native("loss", available=built_in is not None):
                return built_in
        return make_loss(loss, output)

    def _compile(self, name: str, function, signature: list, jit_compile: bool = False) -> None:
        """compiled[name]: `function` as a tf.function of that input signature, counting its traces in trace_counts."""

        def traced(*args):
            self.trace_counts[name] += 1
            return function(*args)

        self.trace_counts[name] = 0
        self.compiled[name] = tf.function(traced, autograph=False, jit_compile=jit_compile, input_signature=signature)

    def versions(self) -> dict[str, str]:
        return framework.versions()

    def settings(self) -> dict[str, object]:
        device = self.model.trainable_variables[0].value.device
        return framework.settings(self.thread_settings, device, self.spec.dtype, self.jit_compile)

    def parameter_count(self) -> int:
        return int(sum(np.prod(v.shape, dtype=np.int64) for v in self.model.trainable_weights))

    def get_weights(self) -> dict[str, np.ndarray]:
        return {name: np.array(v.numpy(), copy=True).reshape(self.info[name].shape) for name, v in self._variables.items()}

    def _set_weights(self, weights: dict[str, np.ndarray]) -> None:
        for name, array in weights.items():
            self._variables[name].assign(array.reshape(self._variables[name].shape))  # native prelu: (1, 1, C)

    def _load_training_data(self, x: np.ndarray, y: np.ndarray) -> None:
        """Kept as tensors, passed to the compiled loop as arguments (not captured)."""
        self.x, self.y = tf.constant(x), tf.constant(y)

    # Inside the compiled functions --------------------------------------------------------------

    def _forward(self, x: tf.Tensor, training: bool, noise: tuple | None = None, outputs: bool = False):
        """The logits (N, C) of x, the Keras layers called in plan order; with outputs=True, every layer's output by name.

        noise (training only): one tensor (N, *input_shape) per noisy layer, in plan order; a dropout layer
        multiplies by its mask instead of drawing one and an rrelu layer takes its slopes, and neither advances
        its seed generator. Other layers (and all without noise) are the Keras layers' own calls; batch norm in
        training uses the batch statistics and updates its moving statistics.
        """
        noisy = {layer.name for layer in self.noisy_layers}
        given = {} if noise is None else dict(zip((layer.name for layer in self.noisy_layers), noise))
        h, per_layer = x, {}
        for layer, built in self._layers:
            if layer.name in given:
                h = h * given[layer.name] if isinstance(layer, P.Dropout) else leaky(h, given[layer.name])  # rrelu
            elif isinstance(layer, (P.BatchNormalization, P.Dropout)) or layer.name in noisy:
                h = built(h, training=training)
            else:
                h = built(h)
            per_layer[layer.name] = h
        return (h, per_layer) if outputs else h

    def _batch_loss(self, x: tf.Tensor, y: tf.Tensor, training: bool, noise: tuple | None = None):
        """(per-sample losses (N,), number of correctly classified samples, as backends.base.correct_count counts)."""
        logits = self._forward(x, training, noise)  # (N, C)
        if self.plan[-1].units == 1:
            correct = tf.equal(logits[:, 0] > 0, y[:, 0] > 0.5)
        else:
            correct = tf.equal(tf.argmax(logits, axis=-1), tf.argmax(y, axis=-1))
        return self.loss(logits, y), tf.reduce_sum(tf.cast(correct, tf.int64))

    def _step(self, x, y, rate, noise=None):
        """One optimizer step on the batch x (B, H, W, C), y (B, C); returns (batch mean loss, hits)."""
        variables = self.model.trainable_variables
        set_learning_rate(self.optimizer, rate)
        with tf.GradientTape() as tape:
            per_sample, hits = self._batch_loss(x, y, training=True, noise=noise)
            loss = tf.reduce_mean(per_sample)
        apply_gradients(self.optimizer, tape.gradient(loss, variables), variables, self.catalog_clip)
        return loss, hits

    def _epoch(self, x, y, order, bounds, rates, noise=None):
        """Step i trains on x[order[bounds[i]:bounds[i+1]]] at rates[i], with noise[k][bounds[i]:bounds[i+1]] as
        noisy layer k's values when noise is given; returns the (S,) losses and hits."""
        steps = tf.size(rates)

        def step(i, losses, hits):
            batch = order[bounds[i] : bounds[i + 1]]  # (B,)
            arguments = (tf.gather(x, batch), tf.gather(y, batch), rates[i])
            if noise is None:
                loss, correct = self.compiled["step"](*arguments)
            else:
                loss, correct = self.compiled["noisy step"](*arguments, tuple(v[bounds[i] : bounds[i + 1]] for v in noise))
            return i + 1, losses.write(i, loss), hits.write(i, correct)

        arrays = (tf.TensorArray(self.tensor_dtype, size=steps), tf.TensorArray(tf.int64, size=steps))
        _, losses, hits = tf.while_loop(lambda i, *_: i < steps, step, (tf.constant(0), *arrays), parallel_iterations=1)
        return losses.stack(), hits.stack()

    def _gradients(self, x, y, noise=None):
        """(mean loss, gradients in the order of trainable_names) in train mode, restoring what the forward pass
        assigns: the batch-norm moving statistics and, when the layers draw, their seed generators' states (read
        before, assigned back after; tf.function orders the accesses)."""
        variables = [self._variables[name] for name in self.trainable_names]
        saved = [tf.identity(v.value) for v in self._running]
        seeds = [tf.identity(g.state.value) for g in self._seed_generators] if noise is None else []
        with tf.GradientTape() as tape:
            per_sample, _ = self._batch_loss(x, y, training=True, noise=noise)
            loss = tf.reduce_mean(per_sample)
        grads = tape.gradient(loss, variables)
        with tf.control_dependencies([loss, *grads]):
            for variable, value in zip(self._running, saved):
                variable.assign(value)
            for generator, value in zip(self._seed_generators, seeds):
                generator.state.assign(value)
        return loss, grads

    # The hooks ------------------------------------------------------------------------------------

    def _train_epoch(self, batches, rates, noise) -> base.StepStats:
        order = np.concatenate(batches)
        bounds = np.concatenate([[0], np.cumsum([len(b) for b in batches])]).astype(np.int64)
        arguments = (self.x, self.y, tf.constant(order), tf.constant(bounds), tf.constant(rates))
        if noise is None or not self.noisy_layers:
            losses, hits = self.compiled["epoch"](*arguments)
        else:  # per noisy layer, the steps' values concatenated along the batch axis
            stacked = tuple(tf.constant(np.concatenate([step[layer.name] for step in noise])) for layer in self.noisy_layers)
            losses, hits = self.compiled["noisy epoch"](*arguments, stacked)
        return base.StepStats(losses.numpy(), hits.numpy())

    def _eval_batches(self, x, y, batch_size):
        logits = np.concatenate([self.compiled["logits"](tf.constant(x[start : start + batch_size])).numpy()
                                 for start in range(0, len(x), batch_size)])
        return logits, None if y is None else self.compiled["losses"](tf.constant(logits), tf.constant(y)).numpy()

    def _layer_outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.compiled["layer outputs"](tf.constant(x))  # Keras' channels-last layouts are canonical
        return {layer.name: outputs[layer.name].numpy() for layer in self.plan}

    def _loss_and_gradients(self, x, y, noise):
        """Without noise the dropout/rrelu seed generators are put back too (so the draw is the one the next
        training step would make)."""
        arguments = (tf.constant(x), tf.constant(y))
        if noise is None or not self.noisy_layers:
            loss, grads = self.compiled["gradients"](*arguments)
        else:
            loss, grads = self.compiled["noisy gradients"](*arguments, tuple(tf.constant(v) for v in noise.values()))
        return loss.numpy(), {name: g.numpy().reshape(self.info[name].shape) for name, g in zip(self.trainable_names, grads)}

    def _native_schedule(self, steps_per_epoch: int):
        return native_schedule(self.spec.schedule, self.spec.optimizer.learning_rate, steps_per_epoch)

    def _apply_gradients(self, gradients: dict[str, np.ndarray], learning_rate: float) -> None:
        set_learning_rate(self.optimizer, learning_rate)
        apply_gradients(self.optimizer, [tf.constant(gradients[name].reshape(self._variables[name].shape)) for name in self.trainable_names],
                        [self._variables[name] for name in self.trainable_names], self.catalog_clip)

    def _optimizer_state(self) -> dict[str, dict[str, np.ndarray]]:
        return {name: {slot: np.array(v.numpy(), copy=True).reshape(self.info[name].shape) for slot, v in optimizer_slots(self.optimizer, self.spec.optimizer, self._variables[name]).items()}
                for name in self.trainable_names}
