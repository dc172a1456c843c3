"""The PyTorch Trainer: torch's half of backends.base.Trainer, eager CPU training of the plan's model."""

import contextlib

import numpy as np
import torch

from backends import base
from backends.torch import framework
from backends.torch import weights as W
from backends.torch.losses import make_loss, make_native_loss
from backends.torch.model import PlanModel
from backends.torch.optimizers import add_clipping, make_native_optimizer, make_optimizer, native_schedule, state_slots
from experiments.spec import plan as P


class Trainer(base.Trainer):
    """One torch model and its optimizer on the CPU, with torch's process-wide settings (framework.configure).

    Initial weights, dropout masks and rrelu slopes come from the trainer's own torch.Generator seeded by spec.seed,
    so trainers in one process are independent. Data is kept as NCHW tensors of `tensor_dtype`; a step is
    index_select, forward, loss, backward, optimizer step (clipping in its pre-hook); per-step losses and logits are
    kept as tensors and the correct counts taken once per epoch.
    Injected noise is moved to torch's layout and set on the Dropout/RReLU modules for that forward, so the
    generator is not consumed; loss_and_gradients uses torch.autograd.grad (no .grad, no optimizer) and restores
    the batch-norm buffers afterwards.

    implementation = "native" (_build_native): torch's own modules, initialisers, loss functionals, torch.optim class
    and clip_grad_norm_ where torch has them (native dropout and rrelu draw from torch's global generator, seeded by
    framework.configure; injected noise is still used as given); fallbacks are named in native_fallbacks.
    """

    def __init__(self, spec, plan, threads: int) -> None:
        super().__init__(spec, plan, threads)
        framework.configure(threads, spec.seed)
        self.tensor_dtype = framework.tensor_dtype(self.dtype)
        self.generator = torch.Generator(device="cpu").manual_seed(spec.seed)
        if spec.implementation == "native":
            self._build_native()
        else:
            self.model = PlanModel(self.plan, self.tensor_dtype, self.generator)
            self.slots = W.weight_slots(self.plan, self.model.layers)
            self.trainable_slots = [slot for slot in self.slots if slot.tensor.requires_grad]
            W.set_weights(self.slots, W.initial_weights(self.plan, self.tensor_dtype, self.generator), self.tensor_dtype)
            self.loss = make_loss(spec.loss, spec.model.output_activation)
            self.optimizer = make_optimizer(spec.optimizer, self.model.parameters())
            self.native_optimizer = False
        self.binary = self.plan[-1].units == 1
        self._x = self._y = self._labels = None

    def _build_native(self) -> None:
        """implementation = "native": each component from torch's own API where the spec asks and torch has one
        (model.native_module, weights.native_initial_weights, losses.make_native_loss,
        optimizers.make_native_optimizer; clipping by clip_grad_norm_), the catalog's elsewhere (self.native records
        the fallbacks). Weights keep the canonical names and layouts."""
        spec = self.spec
        self.model = PlanModel(self.plan, self.tensor_dtype, self.generator, self.native)
        self.slots = W.weight_slots(self.plan, self.model.layers)
        self.trainable_slots = [slot for slot in self.slots if slot.tensor.requires_grad]
        W.set_weights(self.slots, W.native_initial_weights(self.plan, self.slots, self.tensor_dtype, self.generator,
                                                           self.native), self.tensor_dtype)
        self.loss = make_loss(spec.loss, spec.model.output_activation)
        if spec.uses_native("loss"):
            native_loss = make_native_loss(spec.loss, spec.model.output_activation)
            if self.native("loss", available=native_loss is not None):
                self.loss = native_loss
        entry = spec.optimizer
        native_clipping = entry.clip_global_norm is not None and self.native("clipping")
        self.native_optimizer = self.native("optimizer")
        if self.native_optimizer:
            self.optimizer = make_native_optimizer(entry, self.model.parameters(), native_clipping)
        elif native_clipping:
            self.optimizer = make_optimizer(entry.model_copy(update={"clip_global_norm": None}), self.model.parameters())
            add_clipping(self.optimizer, entry, native=True)
        else:
            self.optimizer = make_optimizer(entry, self.model.parameters())

    def versions(self) -> dict[str, str]:
        return framework.versions()

    def settings(self) -> dict[str, object]:
        return framework.settings(self.threads, self.dtype)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def get_weights(self) -> dict[str, np.ndarray]:
        return W.get_weights(self.slots)

    def _set_weights(self, weights: dict[str, np.ndarray]) -> None:
        W.set_weights(self.slots, weights, self.tensor_dtype)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        """An owned tensor of a canonical array; a 4-D one with the features moved to dim 1, in standard NCHW
        strides. (movedim(-1, 1).contiguous() copies nothing for one channel: the (N, 1, H, W) tensor would keep
        NHWC strides (HW, 1, W, 1), which torch's convolutions read as channels_last, so an evaluation or
        loss_and_gradients on a whole array ran another memory format than the index_select'ed training batches.)"""
        t = torch.tensor(array, dtype=self.tensor_dtype)
        return t.movedim(-1, 1).clone(memory_format=torch.contiguous_format) if t.dim() > 2 else t

    def _classes(self, y: torch.Tensor) -> torch.Tensor:
        return y[:, 0] > 0.5 if self.binary else y.argmax(dim=1)  # as base.correct_count

    def _predictions(self, logits: torch.Tensor) -> torch.Tensor:
        return logits[:, 0] > 0.0 if self.binary else logits.argmax(dim=1)

    def _load_training_data(self, x: np.ndarray, y: np.ndarray) -> None:
        self._x, self._y = self._tensor(x), self._tensor(y)
        self._labels = self._classes(self._y)

    @contextlib.contextmanager
    def _injected(self, noise: dict[str, np.ndarray] | None):
        """Dropout multipliers and rrelu slopes taken from `noise` (None: drawn) inside the block."""
        modules = [self.model.layers[layer.name] for layer in self.noisy_layers]
        try:
            for name, values in (noise or {}).items():
                self.model.layers[name].noise = self._tensor(values)
            yield
        finally:
            for module in modules:
                module.noise = None

    def _train_epoch(self, batches, rates, noise) -> base.StepStats:
        """The epoch's targets and labels are gathered once and sliced per step, and the per-step statistics are
        taken after the loop: each step keeps its detached loss and logits, and the epoch predicts and compares with
        the labels once (a step's own work is index_select of the inputs, forward, loss, backward, optimizer step).
        Fewer ops per step matter beyond their own cost: in the workers' environment (OMP_WAIT_POLICY=PASSIVE,
        experiments.threads) every op that runs parallel wakes the sleeping thread."""
        index_all = torch.from_numpy(np.concatenate(batches))
        targets_all, labels_all = self._y.index_select(0, index_all), self._labels.index_select(0, index_all)
        losses, outputs = [], []
        groups = self.optimizer.param_groups
        self.model.train()
        start = 0
        for step, batch in enumerate(batches):
            stop = start + len(batch)
            index = index_all[start:stop]
            x = self._x.index_select(0, index)
            for group in groups:
                group["lr"] = float(rates[step])
            self.optimizer.zero_grad(set_to_none=True)
            if noise is None:
                logits = self.model(x)
            else:
                with self._injected(noise[step]):
                    logits = self.model(x)
            loss = self.loss(logits, targets_all[start:stop]).mean()
            loss.backward()
            self.optimizer.step()
            with torch.no_grad():
                losses.append(loss.detach())
                outputs.append(logits.detach())
            start = stop
        with torch.no_grad():
            hits = (self._predictions(torch.cat(outputs)) == labels_all).numpy().astype(np.int64)
            correct = np.add.reduceat(hits, np.cumsum([0] + [len(batch) for batch in batches[:-1]]))
            return base.StepStats(loss=torch.stack(losses).to(torch.float64).numpy(), correct=correct)

    def _layer_outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """NCHW maps reported as NHWC, a flatten of a map in (H, W, C) order (torch flattens (C, H, W))."""
        h = self._tensor(x)
        self.model.eval()
        outputs = {}
        with torch.inference_mode():
            for layer in self.plan:
                out = self.model.layers[layer.name](h)
                if isinstance(layer, P.Flatten) and h.dim() == 4:
                    canonical = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)
                elif out.dim() == 4:
                    canonical = out.permute(0, 2, 3, 1)
                else:
                    canonical = out
                outputs[layer.name] = canonical.contiguous().numpy().copy()
                h = out
        return outputs

    def _loss_and_gradients(self, x, y, noise):
        """The train-mode forward updates the batch-norm running statistics: they are copied back (bit for bit)."""
        inputs, targets = self._tensor(x), self._tensor(y)
        saved = [b.detach().clone() for b in self.model.buffers()]
        self.model.train()
        try:
            with torch.enable_grad(), self._injected(noise):
                loss = self.loss(self.model(inputs), targets).mean()
            if loss.requires_grad:
                grads = torch.autograd.grad(loss, [slot.tensor for slot in self.trainable_slots], allow_unused=True)
            else:  # nothing reaches a parameter (a forward-only activation cuts every path)
                grads = [None] * len(self.trainable_slots)
        finally:
            with torch.no_grad():
                for buffer, value in zip(self.model.buffers(), saved):
                    buffer.copy_(value)
        with torch.no_grad():
            gradients = {
                slot.name: slot.to_canonical(torch.zeros_like(slot.tensor) if g is None else g).contiguous().numpy().copy()
                for slot, g in zip(self.trainable_slots, grads)
            }
        return float(loss.detach()), gradients

    def _native_schedule(self, steps_per_epoch: int):
        return native_schedule(self.spec.schedule, self.spec.optimizer.learning_rate, steps_per_epoch)

    def _apply_gradients(self, gradients: dict[str, np.ndarray], learning_rate: float) -> None:
        for slot in self.trainable_slots:
            slot.tensor.grad = slot.from_canonical(torch.tensor(gradients[slot.name], dtype=self.tensor_dtype)).contiguous()
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _optimizer_state(self) -> dict[str, dict[str, np.ndarray]]:
        """torch's per-parameter state renamed to the catalog's slots (optimizers.state_slots), canonical layout."""
        keys = state_slots(self.spec.optimizer, self.native_optimizer)
        result = {}
        with torch.no_grad():
            for slot in self.trainable_slots:
                state = self.optimizer.state.get(slot.tensor, {})
                result[slot.name] = {
                    ours: slot.to_canonical(state[key] if key in state else torch.zeros_like(slot.tensor)).contiguous().numpy().copy()
                    for key, ours in keys.items()
                }
        return result

    def _eval_batches(self, x, y, batch_size):
        inputs = self._tensor(x)
        targets = None if y is None else self._tensor(y)
        logits, losses = [], []
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, inputs.shape[0], batch_size):
                z = self.model(inputs[start : start + batch_size])
                logits.append(z.numpy().copy())
                if targets is not None:
                    losses.append(self.loss(z, targets[start : start + batch_size]).numpy().copy())
        return np.concatenate(logits), None if y is None else np.concatenate(losses)
