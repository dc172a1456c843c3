"""The PyTorch Trainer (backends.base contract): eager CPU training of the plan's model."""

import contextlib
import ctypes
import re
from typing import Sequence

import numpy as np
import torch

from backends.base import StepStats, check_epoch_arguments, check_eval_arguments, check_names_and_shapes, no_logits
from backends.torch import weights as W
from backends.torch.layers import PlanModel
from backends.torch.losses import make_loss
from backends.torch.optimizers import make_optimizer, state_slots
from experiments.spec import plan as P
from experiments.threads import seen_settings

DTYPES = {"float32": torch.float32, "float64": torch.float64}


class Trainer:
    """One torch model and its optimizer, built from a spec and its layer plan; runs on the CPU.

    Process-wide torch settings applied here: set_num_threads(threads),
    use_deterministic_algorithms(True) (with fill_uninitialized_memory pinned on), float32 matmul
    precision "highest", manual_seed(seed). Initial weights, then dropout masks and rrelu slopes come from the
    trainer's own torch.Generator seeded by spec.seed, so trainers in one process are independent.
    Data is kept as NCHW tensors: (N, 28, 28, 1) inputs are permuted once on arrival; a step is
    index_select, forward, loss, backward, optimizer step (gradient clipping in its pre-hook), with
    per-step stats kept in tensors. Binary tasks (one output): a sample is correct when
    (logit > 0) == (y > 0.5), else when argmax(logits) == argmax(y).

    For the parity ladder: layer_outputs reports every layer in the canonical layout (NHWC, flatten
    in (H, W, C) order); loss_and_gradients differentiates with torch.autograd.grad (no .grad, no
    optimizer) and restores the batch-norm buffers afterwards; given noise (canonical arrays) is
    moved to torch's layout and set on the Dropout/RReLU modules for that forward, so the
    generator is not consumed; optimizer_state renames torch's state (optimizers.state_slots).
    """

    def __init__(self, spec, plan, threads: int) -> None:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True)
        torch.utils.deterministic.fill_uninitialized_memory = True  # torch's default with the above; pinned
        torch.set_float32_matmul_precision("highest")
        torch.manual_seed(spec.seed)
        self.spec, self.plan, self.threads = spec, tuple(plan), threads
        self.dtype, self.np_dtype = DTYPES[spec.dtype], np.dtype(spec.dtype)
        self.generator = torch.Generator(device="cpu").manual_seed(spec.seed)
        self.model = PlanModel(self.plan, self.dtype, self.generator)
        self.slots = W.weight_slots(self.plan, self.model.layers)
        W.set_weights(self.slots, W.initial_weights(self.plan, self.dtype, self.generator), self.dtype)
        self.loss = make_loss(spec.loss, spec.model.output_activation)
        self.binary = self.plan[-1].units == 1
        self.optimizer = make_optimizer(spec.optimizer, self.model.parameters())
        self._steps = 0  # optimizer steps taken (optimizer_state is {} before the first)
        self._noisy = {layer.name: layer for layer in self.plan
                       if isinstance(layer, P.Dropout) or (isinstance(layer, P.Activation) and layer.activation.name == "rrelu")}
        self._x = self._y = self._labels = None

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__}

    def settings(self) -> dict[str, object]:
        """What decides run-to-run reproducibility here, read back from this process.

        `deterministic` is torch's flag: it covers torch's own ops only. MKL GEMMs are reproducible
        only with a fixed thread count, dynamic threads off and MKL's CNR mode (MKL_CBWR), which
        come from the environment the worker was started with (experiments.threads), shown as
        seen here; MKL's CNR and dynamic states cannot be queried, so the variables are the record.
        omp_dynamic is libgomp's own answer (None where the symbol is not visible).
        """
        libc = ctypes.CDLL(None)
        mkl = re.search(r"mkl_get_max_threads\(\) : (\d+)", torch.__config__.parallel_info())
        return {
            "threads": torch.get_num_threads(),
            "threads_requested": self.threads,
            "interop_threads": torch.get_num_interop_threads(),
            "mkl_max_threads": int(mkl.group(1)) if mkl else None,
            "omp_dynamic": bool(libc.omp_get_dynamic()) if hasattr(libc, "omp_get_dynamic") else None,
            "thread_environment": seen_settings(),
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "fill_uninitialized_memory": bool(torch.utils.deterministic.fill_uninitialized_memory),
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "device": "cpu",
            "dtype": self.spec.dtype,
        }

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def get_weights(self) -> dict[str, np.ndarray]:
        return W.get_weights(self.slots)

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        W.set_weights(self.slots, weights, self.dtype)

    def _inputs(self, x: np.ndarray) -> torch.Tensor:
        """(N, H, W, C) NumPy -> an owned (N, C, H, W) tensor in spec.dtype."""
        x = np.asarray(x)
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(self.plan[0].input_shape):
            raise ValueError(f"x must be (N, {', '.join(map(str, self.plan[0].input_shape))}), got {x.shape}")
        return torch.tensor(x, dtype=self.dtype).permute(0, 3, 1, 2).contiguous()

    def _targets(self, y: np.ndarray, n: int) -> torch.Tensor:
        y = np.asarray(y)
        if y.shape != (n, self.plan[-1].units):
            kind = "0/1" if self.binary else "one-hot"
            raise ValueError(f"y must be {kind} ({n}, {self.plan[-1].units}), got {y.shape}")
        return torch.tensor(y, dtype=self.dtype)

    def _classes(self, y: torch.Tensor) -> torch.Tensor:
        """The target class of each sample: y > 0.5 for a binary task, else argmax(y)."""
        return y[:, 0] > 0.5 if self.binary else y.argmax(dim=1)

    def _predictions(self, logits: torch.Tensor) -> torch.Tensor:
        """The predicted class of each sample: logit > 0 for a binary task, else argmax(logits)."""
        return logits[:, 0] > 0.0 if self.binary else logits.argmax(dim=1)

    def load_training_data(self, x: np.ndarray, y: np.ndarray) -> None:
        self._x = self._inputs(x)  # (N, C, H, W)
        self._y = self._targets(y, self._x.shape[0])
        self._labels = self._classes(self._y)

    def _noise_tensors(self, noise: dict, n: int) -> dict[str, torch.Tensor]:
        """One step's canonical noise arrays {layer name: (n, *input_shape)} as torch-layout tensors.

        Every noisy layer (dropout, rrelu) must be given, and nothing else."""
        if set(noise) != set(self._noisy):
            raise ValueError(f"noise: missing {sorted(set(self._noisy) - set(noise))}, "
                             f"unexpected {sorted(set(noise) - set(self._noisy))}")
        tensors = {}
        for name, layer in self._noisy.items():
            array = np.asarray(noise[name])
            shape = (n, *layer.input_shape)
            if tuple(array.shape) != shape:
                raise ValueError(f"noise[{name!r}] must be {shape}, got {array.shape}")
            t = torch.tensor(array, dtype=self.dtype)
            tensors[name] = t.movedim(-1, 1).contiguous() if t.dim() > 2 else t  # (N, H, W, C) -> NCHW
        return tensors

    @contextlib.contextmanager
    def _injected(self, tensors: dict[str, torch.Tensor] | None):
        """Dropout multipliers and rrelu slopes taken from `tensors` (None: drawn) inside the block."""
        modules = [self.model.layers[name] for name in self._noisy]
        try:
            if tensors is not None:
                for name, t in tensors.items():
                    self.model.layers[name].noise = t
            yield
        finally:
            for module in modules:
                module.noise = None

    def train_epoch(self, batches: Sequence[np.ndarray], learning_rates: np.ndarray, noise=None) -> StepStats:
        rates = check_epoch_arguments(batches, learning_rates, noise, None if self._x is None else int(self._x.shape[0]))
        losses = torch.empty(len(batches), dtype=torch.float64)
        correct = torch.empty(len(batches), dtype=torch.int64)
        self.model.train()
        for step, batch in enumerate(batches):
            index = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.int64))
            x, y = self._x.index_select(0, index), self._y.index_select(0, index)
            step_noise = None if noise is None else self._noise_tensors(noise[step], x.shape[0])
            for group in self.optimizer.param_groups:
                group["lr"] = float(rates[step])
            self.optimizer.zero_grad(set_to_none=True)
            with self._injected(step_noise):
                logits = self.model(x)
            loss = self.loss(logits, y).mean()
            loss.backward()
            self.optimizer.step()
            self._steps += 1
            with torch.no_grad():
                losses[step] = loss
                correct[step] = (self._predictions(logits) == self._labels.index_select(0, index)).sum()
        return StepStats(loss=losses.numpy(), correct=correct.numpy())

    def layer_outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Eval-mode output of every plan layer in canonical layout: NCHW maps reported as NHWC, a
        flatten of a map in (H, W, C) order (torch flattens (C, H, W)), 2-D outputs as they are."""
        h = self._inputs(x)
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
                outputs[layer.name] = canonical.contiguous().numpy().astype(self.np_dtype, copy=True)
                h = out
        return outputs

    def loss_and_gradients(self, x: np.ndarray, y: np.ndarray, noise: dict | None = None) -> tuple[float, dict[str, np.ndarray]]:
        """Train-mode mean loss and its gradient for every trainable canonical parameter (canonical layout).

        torch.autograd.grad leaves every .grad and the optimizer alone; the batch-norm running
        statistics the train-mode forward updates are copied back afterwards (bit for bit)."""
        inputs = self._inputs(x)
        targets = self._targets(y, inputs.shape[0])
        tensors = None if noise is None else self._noise_tensors(noise, inputs.shape[0])
        trainable = [slot for slot in self.slots if slot.tensor.requires_grad]
        saved = [b.detach().clone() for b in self.model.buffers()]
        self.model.train()
        try:
            with torch.enable_grad(), self._injected(tensors):
                loss = self.loss(self.model(inputs), targets).mean()
            if loss.requires_grad:
                grads = torch.autograd.grad(loss, [slot.tensor for slot in trainable], allow_unused=True)
            else:  # nothing reaches a parameter (a forward-only activation cuts every path)
                grads = [None] * len(trainable)
        finally:
            with torch.no_grad():
                for buffer, value in zip(self.model.buffers(), saved):
                    buffer.copy_(value)
        with torch.no_grad():
            gradients = {
                slot.name: slot.to_canonical(torch.zeros_like(slot.tensor) if g is None else g).contiguous().numpy().copy()
                for slot, g in zip(trainable, grads)
            }
        return float(loss.detach()), gradients

    def apply_gradients(self, gradients: dict[str, np.ndarray], learning_rate: float) -> None:
        trainable = [slot for slot in self.slots if slot.tensor.requires_grad]
        check_names_and_shapes("apply_gradients", gradients, {slot.name: slot.shape for slot in trainable})
        for slot in trainable:
            slot.tensor.grad = slot.from_canonical(torch.tensor(np.asarray(gradients[slot.name]), dtype=self.dtype)).contiguous()
        for group in self.optimizer.param_groups:
            group["lr"] = float(learning_rate)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._steps += 1

    def optimizer_state(self) -> dict[str, dict[str, np.ndarray]]:
        """torch's per-parameter state renamed to the contract's slots, canonical names and layouts; {} before a step."""
        if self._steps == 0:
            return {}
        names = state_slots(self.spec.optimizer)
        result = {}
        with torch.no_grad():
            for slot in self.slots:
                if not slot.tensor.requires_grad:
                    continue
                state = self.optimizer.state.get(slot.tensor, {})
                result[slot.name] = {
                    ours: slot.to_canonical(state[key] if key in state else torch.zeros_like(slot.tensor)).contiguous().numpy().copy()
                    for key, ours in names.items()
                }
        return result

    def _eval_batches(self, x: np.ndarray, batch_size: int):
        """Eval-mode logits of consecutive batches of x, as (start, logits) pairs."""
        inputs = self._inputs(x)
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, inputs.shape[0], batch_size):
                yield start, self.model(inputs[start : start + batch_size])

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[float, float]:
        check_eval_arguments("evaluate", x, y, batch_size)
        targets = self._targets(y, np.asarray(x).shape[0])
        total_loss, total_correct = 0.0, 0
        for start, logits in self._eval_batches(x, batch_size):
            t = targets[start : start + logits.shape[0]]
            total_loss += float(self.loss(logits, t).to(torch.float64).sum())
            total_correct += int((self._predictions(logits) == self._classes(t)).sum())
        n = targets.shape[0]
        return total_loss / n, total_correct / n

    def predict_logits(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        if check_eval_arguments("predict_logits", x, None, batch_size) == 0:
            return no_logits(self.plan, self.np_dtype)
        return np.concatenate([logits.numpy().copy() for _, logits in self._eval_batches(x, batch_size)]).astype(self.np_dtype, copy=False)
