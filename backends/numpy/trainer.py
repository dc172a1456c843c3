"""The NumPy backend: hand-written forward, backward and optimizer steps in spec.dtype; at float64 it is the oracle."""

import platform

import numpy as np

from backends.base import StepStats, check_epoch_arguments, check_eval_arguments, check_names_and_shapes, no_logits
from backends.numpy import layers
from backends.numpy.forward import layer_params
from backends.numpy.losses import correct_count, loss_and_gradient
from backends.numpy.optimizers import OPTIMIZERS, used_slots
from experiments.noise import draw_noise, noise_generator
from experiments.spec import parameter_info
from experiments.spec import plan as P
from experiments.spec.weights import initial_weights


class Trainer:
    """Implements backends.base.Trainer with NumPy arrays of spec.dtype."""

    def __init__(self, spec, plan, threads: int):
        self.spec, self.plan = spec, plan
        self.dtype = np.dtype(spec.dtype)
        self.info = parameter_info(plan)
        self.weights = {k: v.astype(self.dtype) for k, v in initial_weights(plan, spec.seed).items()}
        self.trainable = [name for name, info in self.info.items() if info.trainable]
        self.optimizer = OPTIMIZERS[spec.optimizer.name](spec.optimizer, {k: self.weights[k] for k in self.trainable})
        self.noise_rng = noise_generator(spec.seed)
        self.x = self.y = None

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}

    def settings(self) -> dict[str, object]:
        return {"dtype": self.dtype.name, "device": "cpu", "python": platform.python_version()}

    def parameter_count(self) -> int:
        return int(sum(self.weights[name].size for name in self.trainable))

    def get_weights(self) -> dict[str, np.ndarray]:
        return {name: value.copy() for name, value in self.weights.items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        check_names_and_shapes("set_weights", weights, {name: info.shape for name, info in self.info.items()})
        self.weights = {name: np.array(value, dtype=self.dtype) for name, value in weights.items()}

    def load_training_data(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = np.asarray(x, self.dtype), np.asarray(y, self.dtype)

    def training_noise(self, batch: int) -> dict[str, np.ndarray]:
        """One step's dropout masks and rrelu slopes from the trainer's stream (experiments.noise)."""
        return draw_noise(self.plan, self.noise_rng, batch, self.dtype)

    def loss_and_gradients(self, x: np.ndarray, y: np.ndarray, noise: dict | None = None) -> tuple[float, dict[str, np.ndarray]]:
        """The contract's train-mode mean loss and gradients; nothing changes (noise None draws from the trainer's stream)."""
        per_example, _, grads, _ = self.forward_backward(
            np.asarray(x, self.dtype), np.asarray(y, self.dtype), noise if noise is not None else self.training_noise(len(x))
        )
        return float(per_example.mean()), grads

    def forward_backward(self, x: np.ndarray, y: np.ndarray, noise: dict) -> tuple[np.ndarray, np.ndarray, dict, dict]:
        """Train-mode per-example losses, logits, gradients of the mean loss, and new running statistics."""
        caches, h = [], x
        for layer in self.plan:
            h, cache = layers.forward(layer, layer_params(layer, self.weights), h, train=True, noise=noise)
            caches.append(cache)
        losses, dz = loss_and_gradient(self.spec.loss, self.spec.model.output_activation.name, h, y)
        grads, running = {}, {}
        for layer, cache in zip(reversed(self.plan), reversed(caches)):
            dz, layer_grads = layers.backward(layer, layer_params(layer, self.weights), cache, dz)
            grads.update({f"{layer.name}/{k}": v for k, v in layer_grads.items()})
            if isinstance(layer, P.BatchNormalization):
                running.update({f"{layer.name}/{k}": v for k, v in cache[-1].items()})  # (x_hat, inv_std, running)
        return losses, h, grads, running

    def layer_outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Eval-mode output of every plan layer, by layer name."""
        from backends.numpy.forward import forward

        return forward(self.plan, self.weights, x, outputs=True, dtype=self.dtype)[1]

    def optimizer_state(self) -> dict[str, dict[str, np.ndarray]]:
        """The used slots of every trainable parameter's optimizer state; {} before the first step."""
        if self.optimizer.t == 0:
            return {}
        slots = used_slots(self.spec.optimizer)
        return {name: {slot: state[slot].copy() for slot in slots} for name, state in self.optimizer.state.items()}

    def apply_gradients(self, gradients: dict[str, np.ndarray], learning_rate: float) -> None:
        check_names_and_shapes("apply_gradients", gradients, {name: self.info[name].shape for name in self.trainable})
        trainable = {k: self.weights[k] for k in self.trainable}
        self.optimizer.step(trainable, {k: np.asarray(g, self.dtype) for k, g in gradients.items()}, float(learning_rate))
        self.weights.update(trainable)

    def train_epoch(self, batches, learning_rates, noise=None) -> StepStats:
        learning_rates = check_epoch_arguments(batches, learning_rates, noise, None if self.x is None else len(self.x))
        losses, correct = [], []
        for step, (index, lr) in enumerate(zip(batches, learning_rates)):
            x, y = self.x[index], self.y[index]
            step_noise = noise[step] if noise is not None else self.training_noise(len(index))
            per_example, logits, grads, running = self.forward_backward(x, y, step_noise)
            self.weights.update(running)
            trainable = {k: self.weights[k] for k in self.trainable}
            self.optimizer.step(trainable, grads, float(lr))
            self.weights.update(trainable)
            losses.append(per_example.mean())
            correct.append(correct_count(logits, y))
        return StepStats(np.array(losses, dtype=np.float64), np.array(correct, dtype=np.int64))

    def predict_logits(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        from backends.numpy.forward import forward

        if check_eval_arguments("predict_logits", x, None, batch_size) == 0:
            return no_logits(self.plan, self.dtype)
        return np.concatenate(
            [forward(self.plan, self.weights, x[i : i + batch_size], dtype=self.dtype) for i in range(0, len(x), batch_size)]
        )

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[float, float]:
        check_eval_arguments("evaluate", x, y, batch_size)
        logits = self.predict_logits(x, batch_size)
        per_example, _ = loss_and_gradient(self.spec.loss, self.spec.model.output_activation.name, logits, np.asarray(y, self.dtype))
        return float(per_example.mean()), correct_count(logits, np.asarray(y)) / len(logits)
