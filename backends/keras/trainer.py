"""Keras 3 (TensorFlow backend) Trainer: the plan as a Keras model, trained by a tf.function epoch loop."""

import os

os.environ["KERAS_BACKEND"] = "tensorflow"  # before keras is imported (backends.keras.framework checks it)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import warnings  # noqa: E402
from typing import Sequence  # noqa: E402

import numpy as np  # noqa: E402

from backends.base import StepStats, check_epoch_arguments, check_eval_arguments, check_names_and_shapes, no_logits  # noqa: E402
from backends.keras.activations import leaky  # noqa: E402
from backends.keras.framework import keras, tf  # noqa: E402
from backends.keras.losses import make_loss  # noqa: E402
from backends.keras.model import BATCH_NORM_NAMES, build_model, canonical_variables  # noqa: E402
from backends.keras.optimizers import make_optimizer  # noqa: E402
from experiments.spec import parameter_info  # noqa: E402
from experiments.spec import plan as P  # noqa: E402
from experiments.threads import seen_settings  # noqa: E402


def configure_threads(threads: int) -> dict[str, object]:
    """Set TF's intra- and inter-op thread pools and op determinism; returns what is in effect.

    The pools can only be sized before TF's runtime starts; a later Trainer in the same process
    asking for other sizes gets a warning and the sizes already in effect (reported here).
    TF32 is turned off too (it only exists on Ampere+ GPUs, where TF enables it by default).
    """
    applied = True
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as error:  # "cannot be modified after initialization"
        applied = False
        warnings.warn(f"TensorFlow thread pools were already initialised ({error}); keeping the sizes in effect")
    tf.config.experimental.enable_op_determinism()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    return {
        "threads_requested": threads,
        "threads_applied": applied,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "op_determinism": True,
        "tensor_float_32": tf.config.experimental.tensor_float_32_execution_enabled(),
    }


class Trainer:
    """One Keras model and its optimizer, built from a spec and its layer plan (see backends.base).

    A whole epoch is one call of a tf.function: a tf.while_loop that gathers each batch from
    the training set (held as tensors) and calls the step function, itself a tf.function.
    Input signatures have open dimensions, so each is traced once. The step is XLA-compiled
    (jit_compile; one compilation per batch size) only for plans without convolutions: on
    CPU, XLA fuses an MLP's many small ops (about 2x faster) but runs the CNN ~25x slower.

    The forward pass (`_forward`) runs the Keras layers one by one in plan order (what the
    Sequential model does), so that given noise can replace a layer's own draw: a dropout layer
    then multiplies by the given mask and an rrelu layer uses the given slopes (the same
    `leaky` as RReLU.call). The noisy variants of the step, the epoch loop and the gradient
    function are separate tf.functions taking the noise as data (one tensor per noisy layer).
    """

    def __init__(self, spec, plan, threads: int) -> None:
        self.spec, self.plan = spec, plan
        self.dtype = tf.as_dtype(spec.dtype)
        self._settings = configure_threads(threads)
        self.model = build_model(plan, spec.dtype, spec.seed)
        self._variables = canonical_variables(plan, self.model)
        self._info = parameter_info(plan)
        self.num_classes = plan[-1].units
        self.optimizer = make_optimizer(spec.optimizer)
        self.optimizer.build(self.model.trainable_variables)
        self._loss = make_loss(spec.loss, spec.model.output_activation, self.num_classes)
        self._x = self._y = None
        self.trace_counts = {
            "train": 0, "step": 0, "evaluate": 0, "predict": 0,
            "train_noise": 0, "step_noise": 0, "gradients": 0, "gradients_noise": 0, "layer_outputs": 0,
        }
        self._layers = [(layer, self.model.get_layer(layer.name)) for layer in plan]
        # The layers that draw noise in training: dropout masks and rrelu slopes, in plan order.
        self.noisy_layers = tuple(
            layer for layer in plan
            if isinstance(layer, P.Dropout) or (isinstance(layer, P.Activation) and layer.activation.name == "rrelu")
        )
        self._noisy_names = noisy = {layer.name for layer in self.noisy_layers}
        self._seed_generators = [
            built.seed_generator for layer, built in self._layers
            if layer.name in noisy and getattr(built, "seed_generator", None) is not None
        ]
        self._trainable_names = [name for name, info in self._info.items() if info.trainable]
        self._running = [
            self._variables[f"{layer.name}/{name}"]
            for layer in plan if isinstance(layer, P.BatchNormalization)
            for name in (BATCH_NORM_NAMES["moving_mean"], BATCH_NORM_NAMES["moving_variance"])
        ]
        images = tf.TensorSpec((None, *plan[0].input_shape), self.dtype)
        labels = tf.TensorSpec((None, self.num_classes), self.dtype)
        noise = tuple(tf.TensorSpec((None, *layer.input_shape), self.dtype) for layer in self.noisy_layers)
        indices = tf.TensorSpec((None,), tf.int64)
        rate, rates = tf.TensorSpec((), tf.float64), tf.TensorSpec((None,), tf.float64)
        self.jit_compile = not any(isinstance(layer, P.Conv2D) for layer in plan)
        self._step = tf.function(
            self._train_step, autograph=False, jit_compile=self.jit_compile, input_signature=[images, labels, rate],
        )
        self._train = tf.function(
            self._train_steps, autograph=False, jit_compile=False,
            input_signature=[images, labels, indices, indices, rates],
        )
        self._step_noise = tf.function(
            self._train_step_noise, autograph=False, jit_compile=self.jit_compile,
            input_signature=[images, labels, rate, noise],
        )
        self._train_noise = tf.function(
            self._train_steps_noise, autograph=False, jit_compile=False,
            input_signature=[images, labels, indices, indices, rates, noise],
        )
        self._gradients = tf.function(
            self._loss_and_gradients, autograph=False, jit_compile=self.jit_compile, input_signature=[images, labels],
        )
        self._gradients_noise = tf.function(
            self._loss_and_gradients_noise, autograph=False, jit_compile=self.jit_compile,
            input_signature=[images, labels, noise],
        )
        self._layer_outputs = tf.function(self._all_outputs, autograph=False, jit_compile=False, input_signature=[images])
        self._evaluate = tf.function(self._evaluate_batch, autograph=False, jit_compile=False, input_signature=[images, labels])
        self._predict = tf.function(self._predict_batch, autograph=False, jit_compile=False, input_signature=[images])

    # Provenance -----------------------------------------------------------------------------------

    def versions(self) -> dict[str, str]:
        return {"keras": keras.__version__, "tensorflow": tf.__version__}

    def settings(self) -> dict[str, object]:
        """Thread pools and op determinism as TF reports them; thread_environment is the worker's
        OpenMP/MKL environment as this process sees it (TF's own pools do not read it; listed so
        every backend's record shows what its process ran with)."""
        return {
            **self._settings,
            "thread_environment": seen_settings(),
            "device": self.model.trainable_variables[0].value.device,
            "dtype": self.spec.dtype,
            "compiled": "tf.function epoch loop (tf.while_loop) calling a tf.function step, each also in a variant taking "
                        "injected noise; evaluate/predict/layer_outputs per call; loss_and_gradients as the step is",
            "jit_compile": self.jit_compile,
        }

    # Parameters ------------------------------------------------------------------------------------

    def parameter_count(self) -> int:
        return int(sum(np.prod(v.shape, dtype=np.int64) for v in self.model.trainable_weights))

    def get_weights(self) -> dict[str, np.ndarray]:
        return {name: np.array(v.numpy(), copy=True) for name, v in self._variables.items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        check_names_and_shapes("set_weights", weights, {name: info.shape for name, info in self._info.items()})
        arrays = {name: np.asarray(weights[name]).astype(self.spec.dtype) for name in self._info}
        for name, array in arrays.items():
            self._variables[name].assign(array)

    # Training ----------------------------------------------------------------------------------------

    def load_training_data(self, x: np.ndarray, y: np.ndarray) -> None:
        """Keep the training set as tensors (passed to the compiled loop as arguments, not captured)."""
        self._x = self._images(x)
        self._y = self._labels(y)
        if self._x.shape[0] != self._y.shape[0]:
            raise ValueError(f"load_training_data: {self._x.shape[0]} images but {self._y.shape[0]} labels")

    def _images(self, x: np.ndarray) -> tf.Tensor:
        x = np.asarray(x)
        if x.shape[1:] != self.plan[0].input_shape:
            raise ValueError(f"images have shape {x.shape}, expected (N, {', '.join(map(str, self.plan[0].input_shape))})")
        return tf.constant(x, dtype=self.dtype)

    def _labels(self, y: np.ndarray) -> tf.Tensor:
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[1] != self.num_classes:
            expected = "(N, 1) of 0/1" if self.num_classes == 1 else f"one-hot (N, {self.num_classes})"
            raise ValueError(f"labels have shape {y.shape}, expected {expected}")
        return tf.constant(y, dtype=self.dtype)

    def _forward(self, x: tf.Tensor, training: bool, noise: dict | None = None, outputs: bool = False):
        """The logits (N, C) of x, the Keras layers called in plan order; with outputs=True, every layer's output by name.

        noise (training only): {noisy layer name: tensor (N, *input_shape)}; a dropout layer
        multiplies by its mask instead of drawing one and an rrelu layer takes its slopes, and
        neither advances its seed generator. Other layers (and all without noise) are the Keras
        layers' own calls; batch norm in training uses the batch statistics and updates its
        moving statistics.
        """
        h, per_layer = x, {}
        for layer, built in self._layers:
            if noise is not None and layer.name in noise:
                given = noise[layer.name]
                h = h * given if isinstance(layer, P.Dropout) else leaky(h, given)  # rrelu: RReLU.call with these slopes
            elif isinstance(layer, (P.BatchNormalization, P.Dropout)) or layer.name in self._noisy_names:
                h = built(h, training=training)
            else:
                h = built(h)
            per_layer[layer.name] = h
        return (h, per_layer) if outputs else h

    def _batch_loss(self, x: tf.Tensor, y: tf.Tensor, training: bool, noise: dict | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        """(per-sample losses (N,), number of correctly classified samples).

        Correct: argmax(logits) == argmax(y) with C outputs; (logit > 0) == (y > 0.5) for a binary task (C = 1).
        """
        logits = self._forward(x, training, noise)  # (N, C)
        if self.num_classes == 1:
            correct = tf.equal(logits[:, 0] > 0, y[:, 0] > 0.5)
        else:
            correct = tf.equal(tf.argmax(logits, axis=-1), tf.argmax(y, axis=-1))
        return self._loss(logits, y), tf.reduce_sum(tf.cast(correct, tf.int64))

    def _train_step(self, x, y, rate):
        """One optimizer step on the batch x (B, H, W, C), y (B, C); returns (batch mean loss, hits)."""
        self.trace_counts["step"] += 1  # runs only while tracing
        return self._apply_step(x, y, rate, None)

    def _train_step_noise(self, x, y, rate, noise):
        """`_train_step` with the noisy layers' values given: a tuple in the order of self.noisy_layers."""
        self.trace_counts["step_noise"] += 1
        return self._apply_step(x, y, rate, self._noise_dict(noise))

    def _apply_step(self, x, y, rate, noise):
        variables = self.model.trainable_variables
        self.optimizer.rate.assign(rate)
        with tf.GradientTape() as tape:
            per_sample, hits = self._batch_loss(x, y, training=True, noise=noise)
            loss = tf.reduce_mean(per_sample)
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        return loss, hits

    def _noise_dict(self, noise) -> dict:
        return {layer.name: values for layer, values in zip(self.noisy_layers, noise)}

    def _train_steps(self, x, y, order, bounds, rates):
        """Step i trains on x[order[bounds[i]:bounds[i+1]]] at rates[i]; returns the (S,) losses and hits."""
        self.trace_counts["train"] += 1
        return self._epoch_loop(x, y, order, bounds, rates, lambda i, xb, yb, rate: self._step(xb, yb, rate))

    def _train_steps_noise(self, x, y, order, bounds, rates, noise):
        """`_train_steps` with noise: noise[k][bounds[i]:bounds[i+1]] is step i's values for noisy layer k."""
        self.trace_counts["train_noise"] += 1

        def step(i, xb, yb, rate):
            return self._step_noise(xb, yb, rate, tuple(values[bounds[i] : bounds[i + 1]] for values in noise))

        return self._epoch_loop(x, y, order, bounds, rates, step)

    def _epoch_loop(self, x, y, order, bounds, rates, run_step):
        steps = tf.size(rates)

        def step(i, losses, hits):
            batch = order[bounds[i] : bounds[i + 1]]  # (B,)
            loss, correct = run_step(i, tf.gather(x, batch), tf.gather(y, batch), rates[i])
            return i + 1, losses.write(i, loss), hits.write(i, correct)

        arrays = (tf.TensorArray(self.dtype, size=steps), tf.TensorArray(tf.int64, size=steps))
        _, losses, hits = tf.while_loop(lambda i, *_: i < steps, step, (tf.constant(0), *arrays), parallel_iterations=1)
        return losses.stack(), hits.stack()

    def _noise_tensors(self, noise: dict, n: int, where: str) -> list[np.ndarray]:
        """One step's noise as arrays in the order of self.noisy_layers, checked against the plan."""
        if not isinstance(noise, dict):
            raise TypeError(f"{where}: noise must be a dict {{layer name: array}}, got {type(noise).__name__}")
        expected = [layer.name for layer in self.noisy_layers]
        if set(noise) != set(expected):
            raise ValueError(f"{where}: noise for layers {sorted(noise)}, the plan's noisy layers are {expected}")
        arrays = []
        for layer in self.noisy_layers:
            values = np.asarray(noise[layer.name])
            if values.shape != (n, *layer.input_shape):
                raise ValueError(f"{where}: noise {layer.name} has shape {values.shape}, expected {(n, *layer.input_shape)}")
            arrays.append(values.astype(self.spec.dtype, copy=False))
        return arrays

    def train_epoch(self, batches: Sequence[np.ndarray], learning_rates: np.ndarray, noise: Sequence[dict] | None = None) -> StepStats:
        """One step per batch (see backends.base); noise: None (the layers draw their own), or one
        dict per step {noisy layer name: (B, *input_shape)} of dropout masks and rrelu slopes."""
        rates = check_epoch_arguments(batches, learning_rates, noise, None if self._x is None else int(self._x.shape[0]))
        if not batches:
            return StepStats(np.zeros(0, np.float64), np.zeros(0, np.int64))
        order = np.concatenate([np.asarray(b, dtype=np.int64).ravel() for b in batches])
        bounds = np.concatenate([[0], np.cumsum([len(b) for b in batches])]).astype(np.int64)
        arguments = (self._x, self._y, tf.constant(order), tf.constant(bounds), tf.constant(rates))
        if noise is None:
            losses, hits = self._train(*arguments)
        else:
            steps = [self._noise_tensors(n, len(b), f"train_epoch step {i}") for i, (n, b) in enumerate(zip(noise, batches))]
            if self.noisy_layers:  # per layer, the steps' values concatenated along the batch axis
                stacked = tuple(tf.constant(np.concatenate(parts), dtype=self.dtype) for parts in zip(*steps))
                losses, hits = self._train_noise(*arguments, stacked)
            else:  # nothing to inject
                losses, hits = self._train(*arguments)
        return StepStats(losses.numpy().astype(np.float64), hits.numpy().astype(np.int64))

    # Parity ladder -------------------------------------------------------------------------------

    def _all_outputs(self, x):
        self.trace_counts["layer_outputs"] += 1
        return self._forward(x, training=False, outputs=True)[1]

    def layer_outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Eval-mode output of every plan layer by name (Keras' channels-last layouts are canonical)."""
        outputs = self._layer_outputs(self._images(x))
        return {layer.name: outputs[layer.name].numpy() for layer in self.plan}

    def _gradients_of(self, x, y, noise):
        """(mean loss, gradients in the order of self._trainable_names) in train mode, restoring what
        the forward pass assigns: the batch-norm moving statistics and, when the layers draw, their
        seed generators' states (read before, assigned back after; tf.function orders the accesses)."""
        variables = [self._variables[name] for name in self._trainable_names]
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

    def _loss_and_gradients(self, x, y):
        self.trace_counts["gradients"] += 1
        return self._gradients_of(x, y, None)

    def _loss_and_gradients_noise(self, x, y, noise):
        self.trace_counts["gradients_noise"] += 1
        return self._gradients_of(x, y, self._noise_dict(noise))

    def loss_and_gradients(self, x: np.ndarray, y: np.ndarray, noise: dict | None = None) -> tuple[float, dict[str, np.ndarray]]:
        """Train-mode mean loss and d loss / d parameter of every trainable parameter, by canonical name.

        Changes nothing: no optimizer step, the batch-norm moving statistics are restored after
        the training-mode forward, and without noise the dropout/rrelu seed generators are put
        back too (so the draw is the one the next training step would make). With noise
        ({noisy layer name: (N, *input_shape)}), the given masks and slopes are used.
        """
        x, y = self._images(x), self._labels(y)
        if noise is None or not self.noisy_layers:
            if noise is not None:
                self._noise_tensors(noise, int(x.shape[0]), "loss_and_gradients")
            loss, grads = self._gradients(x, y)
        else:
            arrays = self._noise_tensors(noise, int(x.shape[0]), "loss_and_gradients")
            loss, grads = self._gradients_noise(x, y, tuple(tf.constant(a, dtype=self.dtype) for a in arrays))
        return float(loss.numpy()), {name: g.numpy() for name, g in zip(self._trainable_names, grads)}

    def apply_gradients(self, gradients: dict[str, np.ndarray], learning_rate: float) -> None:
        check_names_and_shapes("apply_gradients", gradients, {name: self._info[name].shape for name in self._trainable_names})
        self.optimizer.rate.assign(float(learning_rate))
        self.optimizer.apply([tf.constant(np.asarray(gradients[name]), dtype=self.dtype) for name in self._trainable_names],
                             [self._variables[name] for name in self._trainable_names])

    def optimizer_state(self) -> dict[str, dict[str, np.ndarray]]:
        """Per trainable parameter, the slots its formula uses (catalog names, e.g. adam "m", "v"); {} before the first step."""
        if int(self.optimizer.iterations.numpy()) == 0:
            return {}
        return {
            name: {slot: np.array(v.numpy(), copy=True) for slot, v in self.optimizer.state_of(self._variables[name]).items()}
            for name in self._trainable_names
        }

    # Evaluation -------------------------------------------------------------------------------------

    def _evaluate_batch(self, x, y):
        self.trace_counts["evaluate"] += 1
        per_sample, hits = self._batch_loss(x, y, training=False)
        return tf.reduce_sum(per_sample), hits

    def _predict_batch(self, x):
        self.trace_counts["predict"] += 1
        return self._forward(x, training=False)

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[float, float]:
        n = check_eval_arguments("evaluate", x, y, batch_size)
        x, y = self._images(x), self._labels(y)
        total, correct = 0.0, 0
        for start in range(0, n, batch_size):
            loss_sum, hits = self._evaluate(x[start : start + batch_size], y[start : start + batch_size])
            total += float(loss_sum.numpy())
            correct += int(hits.numpy())
        return total / n, correct / n

    def predict_logits(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        n = check_eval_arguments("predict_logits", x, None, batch_size)
        if n == 0:
            return no_logits(self.plan, self.spec.dtype)
        x = self._images(x)
        return np.concatenate([self._predict(x[start : start + batch_size]).numpy() for start in range(0, n, batch_size)])
