"""Worker side of levels 1-4: `python -m experiments.verify.probe JOB.json OUT.npz` records one backend's quantities.

Every backend starts from the same canonical weights (one NumPy draw), gets the same batches
from the runner's generator and the same noise from experiments.noise, and records:
(level 3 feeds every optimizer the oracle's level-2 gradients, job["gradients_path"], so that the
step is tested alone: an Adam-family update lr g / (sqrt(v) + eps) has derivative up to lr / eps
in g, and from each backend's own gradients (level 2 agrees to ~1e-14) centered RMSprop's
momentum slot on seed-cnn came out 2.4e-10 apart, rounding amplified, not a formula difference;
level 4 runs the real train step, own gradients included)
forward/<layer>, gradients/loss and gradients/<param>, step/<optimizer>/{weights,state}/...,
trajectory/loss, trajectory/norm/<param> and trajectory/at/<step>/<param>.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
from pydantic import TypeAdapter

from backends import load_trainer
from backends.numpy.trainer import initial_weights
from experiments.catalog import Optimizer
from experiments.batching import epoch_batches, shuffle_generator
from experiments.catalog.schedules import learning_rates
from experiments.noise import draw_noise, noise_generator
from experiments.spec import ExperimentSpec, build_plan
from experiments.verify.cases import LEVEL3_OPTIMIZERS, TRAJECTORY_CHECKPOINTS


def _first_batch(spec, x, y):
    index = epoch_batches(shuffle_generator(spec.seed), len(x), spec.training.batch_size, True)[0]
    return x[index], y[index]


def probe(job: dict) -> dict[str, np.ndarray]:
    clock = time.perf_counter()

    def lap(what: str) -> None:  # each part's time, in the probe's log
        nonlocal clock
        print(f"{what}: {time.perf_counter() - clock:.1f} s", flush=True)
        clock = time.perf_counter()

    spec = ExperimentSpec.model_validate(job["spec"])
    plan = build_plan(spec.model, (28, 28, 1), spec.data.num_outputs)
    arrays = np.load(job["data_path"])
    x_all, y_all = arrays["x"].astype(spec.dtype), arrays["y"].astype(spec.dtype)
    start = {k: v.astype(spec.dtype) for k, v in initial_weights(plan, spec.seed).items()}
    Trainer = load_trainer(job["backend"])
    out: dict[str, np.ndarray] = {}
    levels = set(job["levels"])
    x, y = _first_batch(spec, x_all, y_all)
    batch_noise = draw_noise(plan, noise_generator(spec.seed), len(x), spec.dtype)

    trainer = Trainer(spec, plan, job["threads"])
    trainer.set_weights(start)
    lap("setup")
    if 1 in levels:
        for name, value in trainer.layer_outputs(x).items():
            out[f"forward/{name}"] = value
        lap("level 1")
    if 2 in levels:
        loss, grads = trainer.loss_and_gradients(x, y, batch_noise)
        out["gradients/loss"] = np.asarray(loss)
        out.update({f"gradients/{k}": v for k, v in grads.items()})
        lap("level 2")
    if 3 in levels:
        gradients = _step_gradients(job, trainer, x, y, batch_noise, spec.dtype)
        if job.get("gradients_out"):
            np.savez(job["gradients_out"], **gradients)
        for case, table in LEVEL3_OPTIMIZERS.items():
            optimizer = TypeAdapter(Optimizer).validate_python(table)
            stepped = Trainer(spec.model_copy(update={"optimizer": optimizer}), plan, job["threads"])
            stepped.set_weights(start)
            stepped.apply_gradients(gradients, table["learning_rate"])
            out.update({f"step/{case}/weights/{k}": v for k, v in stepped.get_weights().items()})
            for name, slots in stepped.optimizer_state().items():
                out.update({f"step/{case}/state/{name}/{slot}": v for slot, v in slots.items()})
        lap("level 3")
    if 4 in levels:
        out.update(_trajectory(trainer, spec, plan, start, x_all, y_all, job["steps"]))
        lap("level 4")
    return out


def _step_gradients(job: dict, trainer, x, y, noise, dtype: str) -> dict[str, np.ndarray]:
    """Level 3's input: the oracle's gradients when the job names a file that exists, else this backend's own."""
    if job.get("gradients_path") and Path(job["gradients_path"]).exists():
        with np.load(job["gradients_path"]) as data:
            return {name: data[name].astype(dtype) for name in data.files}
    return trainer.loss_and_gradients(x, y, noise)[1]


def _trajectory(trainer, spec, plan, start, x_all, y_all, steps) -> dict[str, np.ndarray]:
    """steps optimizer steps on the runner's batches and noise, one train_epoch call per step."""
    trainer.set_weights(start)
    trainer.load_training_data(x_all, y_all)
    shuffle, noise_rng = shuffle_generator(spec.seed), noise_generator(spec.seed)
    per_epoch = len(x_all) // spec.training.batch_size
    rates = learning_rates(spec.optimizer.learning_rate, spec.schedule, 0, steps, per_epoch)
    batches: list[np.ndarray] = []
    losses, norms, out = [], {}, {}
    for step in range(steps):
        if not batches:
            batches = epoch_batches(shuffle, len(x_all), spec.training.batch_size, True)
        batch = batches.pop(0)
        noise = draw_noise(plan, noise_rng, len(batch), spec.dtype)
        stats = trainer.train_epoch([batch], rates[step : step + 1], noise=[noise])
        losses.append(float(stats.loss[0]))
        weights = trainer.get_weights()
        for name, value in weights.items():
            norms.setdefault(name, []).append(float(np.linalg.norm(value.astype(np.float64))))
        if step + 1 in TRAJECTORY_CHECKPOINTS:
            out.update({f"trajectory/at/{step + 1}/{k}": v for k, v in weights.items()})
    out["trajectory/loss"] = np.asarray(losses)
    out.update({f"trajectory/norm/{k}": np.asarray(v) for k, v in norms.items()})
    return out


def main(argv: list[str]) -> int:
    started = time.perf_counter()
    job = json.loads(Path(argv[0]).read_text())
    np.savez(argv[1], **probe(job))
    print(f"probe {job['backend']} levels {job['levels']}: {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
