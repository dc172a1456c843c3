"""The contract every backend's `Trainer` fulfils; framework-neutral (imports no framework).

Each backend lives in `backends/<name>/`: `__init__.py` declares `SUPPORTED` without importing
its framework, and `trainer.py` defines a class named `Trainer` (same name in every backend,
as AlgoPerf does) that imports the framework at module level. `backends.load_trainer(name)`
imports it lazily, so a user without JAX can still run PyTorch.

Conventions every backend follows (each formula, and where each framework's built-in differs from it, is
written once in the catalog's docstrings, experiments/catalog; `mnist-parity defaults` shows the installed
frameworks' own defaults):
- No framework default is relied on. Every hyperparameter comes from the spec or the plan;
  every layer and tensor gets an explicit dtype (spec.dtype), never a process-global one
  (no `torch.set_default_dtype`, no `keras.config.set_floatx`; JAX enables x64 at import and
  passes `dtype`/`param_dtype` explicitly), so one process can hold float32 and float64
  trainers at once.
- Inputs: x is (N, 28, 28, 1) channels-last in [0, 1], y is one-hot (N, C), both spec.dtype.
- The model output is the logits (the plan ends with Dense "logits"); the output activation
  and the loss are applied by the loss, per the loss catalog's formulas.
- Parameters are initialised by drawing from `layer.kernel_init.distribution(fan_in, fan_out)`
  (and bias_init with the same layer's fans) with the framework's own RNG seeded by spec.seed.
  BatchNorm: scale 1, offset 0, running mean 0, running variance 1.
- BatchNorm follows the suite's formula (experiments.spec.model.BatchNorm): Keras/Flax
  momentum convention and the biased batch variance in the running update.
- Canonical weights (get/set): names and shapes of `experiments.spec.parameter_info(plan)`;
  dense kernel (in, out), conv kernel (kh, kw, in, out); the first dense after a flatten uses
  the (H, W, C) flatten order.
- Steps are compiled the way the framework is meant to be used (jit / tf.function; no per-step
  Python overhead in torch beyond the step itself).
- Tasks: with C = 10 outputs, y is one-hot and a sample is correct when argmax(logits) ==
  argmax(y). A binary task has C = 1 output, y is (N, 1) of 0/1, and a sample is correct when
  (logit > 0) == (y > 0.5).
- Activations with state: prelu's alpha is a trainable parameter (canonical `<layer>/alpha`,
  (1,) or (C,)); rrelu draws a fresh slope per element and step in training with the
  framework's own RNG (seeded from spec.seed) and uses (lower + upper) / 2 in eval mode;
  maxout reduces groups of consecutive features of the last axis, gradient to the first max.
- Gradient clipping (optimizer.clip_global_norm) and every optimizer formula are the catalog's,
  written by hand where a built-in differs.

Besides the Trainer, each backend has `ops.py` (imports its framework) with the op-level
functions the parity tests call. They must reuse the very code the Trainer trains with:
    activation_vjp(entry, x, cotangent, dtype, params=None, training=False, seed=0)
        -> (y, dx, dparams)    # y = act(x); dx = J^T cotangent; dparams e.g. {"alpha": ...} for prelu
    loss_vjp(loss, output_activation, z, y, dtype) -> (loss_value: float, dz)   # mean over the batch
    optimizer_steps(optimizer, params, grads, learning_rates, dtype) -> list of params dicts
        # params: name -> array; grads: one dict per step; returns the params after each step
and `defaults.py` with `framework_defaults() -> list[dict]`, rows of
{"entry", "parameter", "value", "source"} read from the installed framework (inspect.signature,
class attributes) so a version change shows up; `python -m backends.<name>.defaults` prints
them as JSON.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from experiments.catalog import OPTIMIZERS
from experiments.catalog.schedules import learning_rates as catalog_learning_rates
from experiments.spec.plan import noisy_layers, parameter_info


@dataclass(frozen=True)
class StepStats:
    """Per-step results of one training epoch, in step order.

    loss: the batch's mean loss in train mode, before that step's update (float64, (S,)).
    correct: how many of the batch's samples were classified correctly, as correct_count counts (int64, (S,)).
    """

    loss: np.ndarray
    correct: np.ndarray


def correct_count(logits: np.ndarray, y: np.ndarray) -> int:
    """Samples classified correctly: (logit > 0) == (y > 0.5) with one output, argmax(logits) == argmax(y) else."""
    logits, y = np.asarray(logits), np.asarray(y)
    if logits.shape[-1] == 1:
        return int(np.sum((logits[:, 0] > 0) == (y[:, 0] > 0.5)))
    return int(np.sum(np.argmax(logits, axis=-1) == np.argmax(y, axis=-1)))


class Trainer(ABC):
    """One model and its optimizer state, built from a spec and its layer plan.

    This class is the framework-neutral half of every backend: it checks every argument (same
    failure, same words on every backend), derives what the plan fixes (parameter names and
    shapes, trainable names, noisy layers), counts optimizer steps, and runs the evaluate and
    predict loops, summing losses in float64 and counting correct predictions with NumPy. A
    backend subclasses it and writes only the framework's half, the `_`-prefixed methods, which
    receive checked NumPy arrays in spec.dtype:
        _set_weights, _load_training_data, _train_epoch, _eval_batches, _layer_outputs,
        _loss_and_gradients, _optimizer_state, _apply_gradients
    plus versions, settings, parameter_count and get_weights. `noise` reaches a hook as None or
    {noisy layer name: (N, *input_shape) array} in plan order: for Dropout the multiplier
    (0 or 1 / (1 - rate)), for an rrelu Activation the slopes.

    Attributes a backend may read: spec, plan, threads, dtype (NumPy), info (parameter_info),
    trainable_names, noisy_layers, steps_done, num_samples (None until data is loaded).
    """

    def __init__(self, spec, plan, threads: int) -> None:
        """Check what every backend needs from the spec; the subclass then builds the model and optimizer, seeds
        the framework's RNGs from spec.seed and sets threads."""
        if spec.optimizer.name not in OPTIMIZERS:
            raise ValueError(f"optimizer {spec.optimizer.name!r}: not in the catalog ({', '.join(OPTIMIZERS)})")
        self.spec, self.plan, self.threads = spec, tuple(plan), threads
        self.dtype = np.dtype(spec.dtype)
        self.info = parameter_info(self.plan)
        self.trainable_names = tuple(name for name, info in self.info.items() if info.trainable)
        self.noisy_layers = noisy_layers(self.plan)
        self.steps_done = 0  # optimizer steps taken; optimizer_state is {} before the first
        self.num_samples: int | None = None
        self.native_fallbacks: list[str] = []  # native entries this framework has no built-in for (catalog used)
        self._schedules: dict[int, object] = {}  # steps per epoch -> the framework's own schedule (native mode)

    def native(self, component: str, entry: str | None = None, *, available: bool = True) -> bool:
        """Whether to build `component` (for one catalog `entry`) from the framework's own API: the spec asks for it
        (implementation "native", the component not in catalog_components) and the framework has a built-in
        (`available`). Where it has none the catalog's implementation is used and named in native_fallbacks."""
        if not self.spec.uses_native(component, entry if component == "activation" else None):
            return False
        if not available:
            name = component if entry is None else f"{component}:{entry}"
            if name not in self.native_fallbacks:
                self.native_fallbacks.append(name)
        return available

    def learning_rates(self, first_step: int, count: int, steps_per_epoch: int) -> np.ndarray:
        """The float64 learning rates of optimizer steps first_step .. first_step + count - 1: the catalog's closed
        form (experiments.catalog.schedules), or in native mode the values of the framework's own scheduler object
        (`_native_schedule`), stepped the way the framework steps it, where it has one for the spec's schedule."""
        if self.spec.uses_native("schedule"):
            if steps_per_epoch not in self._schedules:
                self._schedules[steps_per_epoch] = self._native_schedule(steps_per_epoch)
            schedule = self._schedules[steps_per_epoch]
            if self.native("schedule", available=schedule is not None):
                steps = np.arange(first_step, first_step + count, dtype=np.int64)
                return np.asarray(schedule(steps), dtype=np.float64).reshape(count)
        return catalog_learning_rates(self.spec.optimizer.learning_rate, self.spec.schedule, first_step, count,
                                      steps_per_epoch)

    def _native_schedule(self, steps_per_epoch: int):
        """The framework's own learning-rate schedule for spec.schedule as a function of an int64 array of step
        numbers (t = 0 at the first update) to their rates, or None where the framework has no built-in for it.
        The default: no built-in schedules (the NumPy oracle)."""
        return None

    # -- the framework's half ------------------------------------------------------------------
    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the framework packages in use, e.g. {"torch": "2.13.0"}."""

    @abstractmethod
    def settings(self) -> dict[str, object]:
        """Thread, determinism and device settings actually applied (for provenance)."""

    @abstractmethod
    def parameter_count(self) -> int:
        """Trainable scalars, counted from the framework's own parameters."""

    @abstractmethod
    def get_weights(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer, by canonical name, in canonical layout, as NumPy."""

    @abstractmethod
    def _set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Load every canonical array (names and shapes checked); the optimizer state is kept."""

    @abstractmethod
    def _load_training_data(self, x: np.ndarray, y: np.ndarray) -> None:
        """Keep the checked training set where the steps read it."""

    @abstractmethod
    def _train_epoch(self, batches: list[np.ndarray], rates: np.ndarray, noise: list[dict] | None) -> StepStats:
        """One step per batch (int64 indices into the training set; at least one batch) at rates[i] (float64)."""

    @abstractmethod
    def _eval_batches(self, x: np.ndarray, y: np.ndarray | None, batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Eval-mode logits (N, C) of x, run batch_size samples at a time, and with y the framework's per-sample
        loss (N,) in spec.dtype (None without y). N >= 1."""

    @abstractmethod
    def _layer_outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Eval-mode output of every plan layer, canonical layout."""

    @abstractmethod
    def _loss_and_gradients(self, x: np.ndarray, y: np.ndarray, noise: dict | None) -> tuple[float, dict[str, np.ndarray]]:
        """Train-mode mean loss and the gradient of every trainable parameter; changes nothing."""

    @abstractmethod
    def _optimizer_state(self) -> dict[str, dict[str, np.ndarray]]:
        """Per trainable parameter, the catalog's state_slots of the formula (called after the first step only)."""

    @abstractmethod
    def _apply_gradients(self, gradients: dict[str, np.ndarray], learning_rate: float) -> None:
        """One optimizer update with checked gradients, through the training optimizer (clipping included)."""

    # -- the neutral half: the contract ----------------------------------------------------------
    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Load canonical weights; names and shapes are checked before anything is copied."""
        check_names_and_shapes("set_weights", weights, {name: info.shape for name, info in self.info.items()})
        self._set_weights({name: np.asarray(weights[name], dtype=self.dtype) for name in self.info})

    def load_training_data(self, x: np.ndarray, y: np.ndarray) -> None:
        """Keep the training set (x (N, 28, 28, 1), y one-hot (N, C)) where the steps read it."""
        x = self.images("load_training_data", x)
        y = self.targets("load_training_data", y, len(x))
        self._load_training_data(x, y)
        self.num_samples = len(x)

    def train_epoch(self, batches: Sequence[np.ndarray], learning_rates: np.ndarray,
                    noise: Sequence[dict] | None = None) -> StepStats:
        """One optimizer step per batch of training-set indices, in the given order.

        All batches have the same length except possibly the last. learning_rates[i] (float64) is the rate of
        step i, already scheduled by the runner. noise: None (the framework draws its own), or one dict per step
        as in loss_and_gradients, so every backend sees the same dropout masks and rrelu slopes."""
        rates = check_epoch_arguments(batches, learning_rates, noise, self.num_samples)
        if not len(batches):
            return StepStats(np.zeros(0, np.float64), np.zeros(0, np.int64))
        batches = [np.asarray(batch, dtype=np.int64) for batch in batches]
        if noise is not None:
            noise = [self.noise_arrays(f"train_epoch step {step}", values, len(batch))
                     for step, (values, batch) in enumerate(zip(noise, batches))]
        stats = self._train_epoch(batches, rates, noise)
        self.steps_done += len(batches)
        return StepStats(np.asarray(stats.loss, dtype=np.float64), np.asarray(stats.correct, dtype=np.int64))

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[float, float]:
        """(mean loss, accuracy) over all samples in eval mode (running statistics, no dropout); the per-sample
        losses are summed in float64 whatever spec.dtype is."""
        n = check_eval_arguments("evaluate", x, y, batch_size)
        x = self.images("evaluate", x)
        y = self.targets("evaluate", y, n)
        logits, losses = self._eval_batches(x, y, int(batch_size))
        return float(np.sum(losses, dtype=np.float64)) / n, correct_count(logits, y) / n

    def predict_logits(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        """Eval-mode logits (N, C) in spec.dtype; an empty (0, C) array for no images."""
        if check_eval_arguments("predict_logits", x, None, batch_size) == 0:
            return np.zeros((0, self.plan[-1].units), dtype=self.dtype)
        logits, _ = self._eval_batches(self.images("predict_logits", x), None, int(batch_size))
        return np.asarray(logits).astype(self.dtype, copy=False)

    # The parity ladder (mnist-parity verify) also needs these:

    def layer_outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Eval-mode output of every plan layer, keyed by plan layer name, in spec.dtype and the
        canonical channels-last layout: (N, H, W, C) images, flatten outputs in (H, W, C) order."""
        return self._layer_outputs(self.images("layer_outputs", x))

    def loss_and_gradients(self, x: np.ndarray, y: np.ndarray, noise: dict | None = None) -> tuple[float, dict[str, np.ndarray]]:
        """Train-mode mean loss and d loss / d parameter for every trainable parameter (canonical
        names and layouts), changing nothing (no update, batch-norm running statistics untouched).

        noise: None (the framework draws its own), or {plan layer name: array} giving every noisy
        layer's values for this batch, canonical layout, shape (N, *layer.input_shape)."""
        x = self.images("loss_and_gradients", x)
        y = self.targets("loss_and_gradients", y, len(x))
        if noise is not None:
            noise = self.noise_arrays("loss_and_gradients", noise, len(x))
        loss, gradients = self._loss_and_gradients(x, y, noise)
        return float(loss), gradients

    def optimizer_state(self) -> dict[str, dict[str, np.ndarray]]:
        """The optimizer's state per trainable parameter (canonical name and layout), with only the slots the
        formula uses, named by experiments.catalog.optimizers.state_slots. Empty before the first step."""
        return {} if self.steps_done == 0 else self._optimizer_state()

    def apply_gradients(self, gradients: dict[str, np.ndarray], learning_rate: float) -> None:
        """One optimizer update with the given gradients (every trainable parameter, canonical
        names and layouts): what a train step does after backpropagation, through the same
        optimizer object and state, clipping included. Nothing else changes (no forward, so the
        batch-norm running statistics stay); optimizer_state() reports the state after it."""
        check_names_and_shapes("apply_gradients", gradients, {name: self.info[name].shape for name in self.trainable_names})
        self._apply_gradients({name: np.asarray(gradients[name], dtype=self.dtype) for name in self.trainable_names},
                              float(learning_rate))
        self.steps_done += 1

    # -- checks --------------------------------------------------------------------------------
    def images(self, what: str, x) -> np.ndarray:
        """x as an (N, H, W, C) array of spec.dtype with the plan's input shape; ValueError otherwise."""
        x = np.asarray(x)
        expected = tuple(self.plan[0].input_shape)
        if x.ndim != 1 + len(expected) or tuple(x.shape[1:]) != expected:
            raise ValueError(f"{what}: images of shape {x.shape}; expected (N, {', '.join(map(str, expected))})")
        return x.astype(self.dtype, copy=False)

    def targets(self, what: str, y, n: int) -> np.ndarray:
        """y as an (n, C) array of spec.dtype: one-hot, or 0/1 for a binary task (C = 1); ValueError otherwise."""
        y = np.asarray(y)
        units = self.plan[-1].units
        if y.shape != (n, units):
            kind = f"(N, 1) of 0/1" if units == 1 else f"one-hot (N, {units})"
            raise ValueError(f"{what}: labels of shape {y.shape} for {n} images; expected {kind}")
        return y.astype(self.dtype, copy=False)

    def noise_arrays(self, what: str, noise, n: int) -> dict[str, np.ndarray]:
        """One step's noise checked against the plan: a value for every noisy layer and nothing else, each of shape
        (n, *input_shape); returned in plan order as spec.dtype arrays."""
        if not isinstance(noise, dict):
            raise TypeError(f"{what}: noise must be a dict {{layer name: array}}, got {type(noise).__name__}")
        expected = [layer.name for layer in self.noisy_layers]
        if set(noise) != set(expected):
            raise ValueError(f"{what}: noise for layers {sorted(noise)}; the plan's noisy layers are {expected}")
        arrays = {}
        for layer in self.noisy_layers:
            values, shape = np.asarray(noise[layer.name]), (n, *layer.input_shape)
            if values.shape != shape:
                raise ValueError(f"{what}: noise {layer.name} has shape {values.shape}; expected {shape}")
            arrays[layer.name] = values.astype(self.dtype, copy=False)
        return arrays


def check_epoch_arguments(batches: Sequence[np.ndarray], learning_rates, noise, num_samples: int | None) -> np.ndarray:
    """Validate train_epoch's arguments the same way on every backend; returns the rates as float64.

    num_samples: the size of the loaded training set (None: nothing loaded yet). Every batch is a non-empty 1-d
    integer array of indices into it, all batches but the last of one length."""
    if num_samples is None:
        raise RuntimeError("train_epoch: call load_training_data first")
    rates = np.asarray(learning_rates, dtype=np.float64)
    if rates.shape != (len(batches),):
        raise ValueError(f"train_epoch: {len(batches)} batches but learning_rates has shape {rates.shape}")
    if noise is not None and len(noise) != len(batches):
        raise ValueError(f"train_epoch: {len(batches)} batches but {len(noise)} noise dicts")
    for step, batch in enumerate(map(np.asarray, batches)):
        if batch.ndim != 1 or len(batch) == 0 or not np.issubdtype(batch.dtype, np.integer) \
                or batch.min() < 0 or batch.max() >= num_samples:
            raise ValueError(f"train_epoch: batch {step} is not a non-empty 1-d integer array of indices into the "
                             f"{num_samples} training samples")
    if any(len(batch) != len(batches[0]) for batch in batches[:-1]):
        raise ValueError("train_epoch: all batches but the last must have the same length")
    return rates


def check_names_and_shapes(what: str, arrays: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]) -> None:
    """`what` (set_weights, apply_gradients) takes exactly the names of `shapes`, each array of its canonical shape;
    checked before anything is copied, with the same words on every backend."""
    missing, unexpected = sorted(set(shapes) - set(arrays)), sorted(set(arrays) - set(shapes))
    if missing or unexpected:
        raise ValueError(f"{what}: missing {missing}, unexpected {unexpected}")
    wrong = [f"{name} {np.shape(a)} (expected {shapes[name]})" for name, a in arrays.items() if tuple(np.shape(a)) != shapes[name]]
    if wrong:
        raise ValueError(f"{what}: wrong shapes " + ", ".join(wrong))


def check_eval_arguments(what: str, x: np.ndarray, y: np.ndarray | None, batch_size: int) -> int:
    """evaluate (y given) and predict_logits (y None) check their arguments the same way on every backend; returns N.

    predict_logits of no images is an empty (0, C) array; evaluate needs at least one image (a mean of nothing is not
    a loss) and as many labels as images; batch_size is at least 1."""
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"{what}: batch_size {batch_size!r}; must be a whole number of at least 1")
    n = int(np.shape(x)[0])
    if y is not None and (n == 0 or n != int(np.shape(y)[0])):
        raise ValueError(f"{what}: {n} images and {int(np.shape(y)[0])} labels; need the same, nonzero number")
    return n
