"""The PyTorch Trainer (backends.base contract): eager CPU training of the plan's model."""

from typing import Sequence

import numpy as np
import torch

from backends.base import StepStats
from backends.torch import weights as W
from backends.torch.layers import PlanModel
from backends.torch.losses import make_loss
from backends.torch.optimizers import make_optimizer

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
        self._x = self._y = self._labels = None

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__}

    def settings(self) -> dict[str, object]:
        return {
            "threads": torch.get_num_threads(),
            "threads_requested": self.threads,
            "interop_threads": torch.get_num_interop_threads(),
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

    def train_epoch(self, batches: Sequence[np.ndarray], learning_rates: np.ndarray) -> StepStats:
        if self._x is None:
            raise RuntimeError("train_epoch before load_training_data")
        rates = np.asarray(learning_rates, dtype=np.float64)
        if rates.shape != (len(batches),):
            raise ValueError(f"{len(batches)} batches but learning_rates has shape {rates.shape}")
        losses = torch.empty(len(batches), dtype=torch.float64)
        correct = torch.empty(len(batches), dtype=torch.int64)
        self.model.train()
        for step, batch in enumerate(batches):
            index = torch.from_numpy(np.asarray(batch, dtype=np.int64))
            x, y = self._x.index_select(0, index), self._y.index_select(0, index)
            for group in self.optimizer.param_groups:
                group["lr"] = float(rates[step])
            self.optimizer.zero_grad(set_to_none=True)
            logits = self.model(x)
            loss = self.loss(logits, y).mean()
            loss.backward()
            self.optimizer.step()
            with torch.no_grad():
                losses[step] = loss
                correct[step] = (self._predictions(logits) == self._labels.index_select(0, index)).sum()
        return StepStats(loss=losses.numpy(), correct=correct.numpy())

    def _eval_batches(self, x: np.ndarray, batch_size: int):
        """Eval-mode logits of consecutive batches of x, as (start, logits) pairs."""
        inputs = self._inputs(x)
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, inputs.shape[0], batch_size):
                yield start, self.model(inputs[start : start + batch_size])

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[float, float]:
        targets = self._targets(y, np.asarray(x).shape[0])
        if targets.shape[0] == 0:
            raise ValueError("evaluate needs at least one sample")
        total_loss, total_correct = 0.0, 0
        for start, logits in self._eval_batches(x, batch_size):
            t = targets[start : start + logits.shape[0]]
            total_loss += float(self.loss(logits, t).to(torch.float64).sum())
            total_correct += int((self._predictions(logits) == self._classes(t)).sum())
        n = targets.shape[0]
        return total_loss / n, total_correct / n

    def predict_logits(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        parts = [logits.numpy().copy() for _, logits in self._eval_batches(x, batch_size)]
        if not parts:
            return np.zeros((0, self.plan[-1].units), dtype=self.np_dtype)
        return np.concatenate(parts).astype(self.np_dtype, copy=False)
