"""The NumPy backend's Trainer: hand-written forward, backward and optimizer steps in spec.dtype; at float64 it is
the oracle."""

import numpy as np

from backends import base
from backends.numpy import framework
from backends.numpy.losses import make_loss
from backends.numpy.model import forward, layer_backward, layer_forward
from backends.numpy.optimizers import make_optimizer
from backends.numpy.weights import layer_params
from experiments.catalog.optimizers import state_slots
from experiments.noise import draw_noise, noise_generator
from experiments.spec import plan as P
from experiments.spec.experiment import COMPONENTS
from experiments.spec.weights import initial_weights


class Trainer(base.Trainer):
    """NumPy arrays of spec.dtype; without injected noise, a step draws its dropout masks and rrelu slopes from the
    trainer's own stream (experiments.noise, seeded by spec.seed)."""

    def __init__(self, spec, plan, threads: int):
        super().__init__(spec, plan, threads)
        for component in COMPONENTS:  # the oracle has no built-ins: native mode is the catalog here
            self.native(component, available=False)
        self.weights = {k: v.astype(self.dtype) for k, v in initial_weights(self.plan, spec.seed).items()}
        self.optimizer = make_optimizer(spec.optimizer, {k: self.weights[k] for k in self.trainable_names})
        self.loss = make_loss(spec.loss, spec.model.output_activation)
        self.noise_rng = noise_generator(spec.seed)
        self.x = self.y = None

    def versions(self) -> dict[str, str]:
        return framework.versions()

    def settings(self) -> dict[str, object]:
        return framework.settings(self.dtype)

    def parameter_count(self) -> int:
        return int(sum(self.weights[name].size for name in self.trainable_names))

    def get_weights(self) -> dict[str, np.ndarray]:
        return {name: value.copy() for name, value in self.weights.items()}

    def _set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.weights = {name: value.copy() for name, value in weights.items()}

    def _load_training_data(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def training_noise(self, batch: int) -> dict[str, np.ndarray]:
        """One step's dropout masks and rrelu slopes drawn from the trainer's stream (experiments.noise)."""
        return draw_noise(self.plan, self.noise_rng, batch, self.dtype)

    def _step_noise(self, noise: dict | None, batch: int) -> dict[str, np.ndarray]:
        return noise if noise is not None else self.training_noise(batch)

    def forward_backward(self, x: np.ndarray, y: np.ndarray, noise: dict) -> tuple[np.ndarray, np.ndarray, dict, dict]:
        """Train-mode per-example losses, logits, gradients of the mean loss, and new running statistics."""
        caches, h = [], x
        for layer in self.plan:
            h, cache = layer_forward(layer, layer_params(layer, self.weights), h, train=True, noise=noise)
            caches.append(cache)
        losses, dz = self.loss(h, y)
        grads, running = {}, {}
        for layer, cache in zip(reversed(self.plan), reversed(caches)):
            dz, layer_grads = layer_backward(layer, layer_params(layer, self.weights), cache, dz)
            grads.update({f"{layer.name}/{k}": v for k, v in layer_grads.items()})
            if isinstance(layer, P.BatchNormalization):
                running.update({f"{layer.name}/{k}": v for k, v in cache[-1].items()})  # (x_hat, inv_std, running)
        return losses, h, grads, running

    def _loss_and_gradients(self, x, y, noise):
        per_example, _, grads, _ = self.forward_backward(x, y, self._step_noise(noise, len(x)))
        return per_example.mean(), grads

    def _layer_outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return forward(self.plan, self.weights, x, outputs=True, dtype=self.dtype)[1]

    def _optimizer_state(self) -> dict[str, dict[str, np.ndarray]]:
        slots = state_slots(self.spec.optimizer)
        return {name: {slot: state[slot].copy() for slot in slots} for name, state in self.optimizer.state.items()}

    def _apply_gradients(self, gradients: dict[str, np.ndarray], learning_rate: float) -> None:
        trainable = {k: self.weights[k] for k in self.trainable_names}
        self.optimizer.step(trainable, gradients, learning_rate)
        self.weights.update(trainable)

    def _train_epoch(self, batches, rates, noise) -> base.StepStats:
        losses, correct = [], []
        for step, (index, rate) in enumerate(zip(batches, rates)):
            x, y = self.x[index], self.y[index]
            per_example, logits, grads, running = self.forward_backward(
                x, y, self._step_noise(None if noise is None else noise[step], len(index)))
            self.weights.update(running)
            self._apply_gradients(grads, float(rate))
            losses.append(per_example.mean())
            correct.append(base.correct_count(logits, y))
        return base.StepStats(np.array(losses, dtype=np.float64), np.array(correct, dtype=np.int64))

    def _eval_batches(self, x, y, batch_size):
        logits = np.concatenate([forward(self.plan, self.weights, x[i : i + batch_size], dtype=self.dtype)
                                 for i in range(0, len(x), batch_size)])
        return logits, None if y is None else self.loss(logits, y)[0]
