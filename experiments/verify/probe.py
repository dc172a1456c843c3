"""Worker side of levels 1-4: `python -m experiments.verify.probe JOB.json OUT_DIR` records one backend's quantities per cell.

Every backend starts from the same canonical weights (one NumPy draw), gets the same batches
from the runner's generator and the same noise from experiments.noise, and records
forward/init/<param> (its own initial draw, before the shared start is loaded), forward/<layer>, gradients/loss and gradients/<param>, step/<optimizer>/{weights,state}/...,
trajectory/loss, trajectory/norm/<param> and trajectory/at/<step>/<param>.

Level 3 feeds every optimizer the oracle's level-2 gradients (ProbeJob.gradients_dir) so that the
step is tested alone: an Adam-family update lr g / (sqrt(v) + eps) has derivative up to lr / eps
in g, and from each backend's own gradients (level 2 agrees to ~1e-14) centered RMSprop's
momentum slot on seed-cnn came out 2.4e-10 apart: rounding amplified, not a formula difference.
Level 4 runs the real train step, own gradients included.
"""

import sys
import time
from pathlib import Path

import numpy as np
from pydantic import TypeAdapter

from backends import load_trainer
from experiments.catalog import Optimizer
from experiments.batching import training_epochs
from experiments.protocol import ProbeJob
from experiments.noise import draw_noise, noise_generator
from experiments.spec import ExperimentSpec, plan_of
from experiments.spec.weights import initial_weights
from experiments.worker import die_with_parent
from experiments.verify.cases import LEVEL3_OPTIMIZERS, ORACLE, TRAJECTORY_CHECKPOINTS
from experiments.verify.initial import INIT_PREFIX


def _first_batch(spec, x, y):
    """The first batch a run of spec trains on."""
    index = next(training_epochs(spec, len(x)))[0][0]
    return x[index], y[index]


def probe_cell(job: ProbeJob, cell: str, data: dict[str, np.ndarray], lap) -> dict[str, np.ndarray]:
    """One cell's quantities (job.cells[cell]); data = {"x", "y"}, the training split loaded once per process."""
    entry = job.cells[cell]
    spec = ExperimentSpec.model_validate(entry["spec"])
    plan = plan_of(spec)
    x_all, y_all = data["x"].astype(spec.dtype), data["y"].astype(spec.dtype)
    start = {k: v.astype(spec.dtype) for k, v in initial_weights(plan, spec.seed).items()}
    Trainer = load_trainer(job.backend)
    out: dict[str, np.ndarray] = {}
    levels = set(job.levels)
    x, y = _first_batch(spec, x_all, y_all)
    batch_noise = draw_noise(plan, noise_generator(spec.seed), len(x), spec.dtype)
    gradients_file = Path(job.gradients_dir) / f"{cell}.npz"

    trainer = Trainer(spec, plan, job.threads)
    if 1 in levels:  # the backend's own initial draw, before the shared start replaces it (experiments.verify.initial)
        out.update({f"forward/{INIT_PREFIX}{name}": value for name, value in trainer.get_weights().items()})
    trainer.set_weights(start)
    lap(f"{cell} setup")
    if 1 in levels:
        for name, value in trainer.layer_outputs(x).items():
            out[f"forward/{name}"] = value
        lap(f"{cell} level 1")
    if 2 in levels:
        loss, grads = trainer.loss_and_gradients(x, y, batch_noise)
        out["gradients/loss"] = np.asarray(loss)
        out.update({f"gradients/{k}": v for k, v in grads.items()})
        lap(f"{cell} level 2")
    if 3 in levels:
        if job.backend == ORACLE or not gradients_file.exists():
            gradients = trainer.loss_and_gradients(x, y, batch_noise)[1]
            if job.backend == ORACLE:
                np.savez(gradients_file, **gradients)
        else:
            with np.load(gradients_file) as data:
                gradients = {name: data[name].astype(spec.dtype) for name in data.files}
        for case, table in (entry.get("step_cases") or LEVEL3_OPTIMIZERS).items():
            optimizer = TypeAdapter(Optimizer).validate_python(table)
            stepped = Trainer(spec.model_copy(update={"optimizer": optimizer}), plan, job.threads)
            stepped.set_weights(start)
            stepped.apply_gradients(gradients, table["learning_rate"])
            out.update({f"step/{case}/weights/{k}": v for k, v in stepped.get_weights().items()})
            for name, slots in stepped.optimizer_state().items():
                out.update({f"step/{case}/state/{name}/{slot}": v for slot, v in slots.items()})
        lap(f"{cell} level 3")
    if 4 in levels:
        out.update(_trajectory(trainer, spec, plan, start, x_all, y_all, job.steps))
        lap(f"{cell} level 4")
    return out


def _trajectory(trainer, spec, plan, start, x_all, y_all, steps) -> dict[str, np.ndarray]:
    """steps optimizer steps on the run's batches, rates and noise, one train_epoch call per step."""
    trainer.set_weights(start)
    trainer.load_training_data(x_all, y_all)
    noise_rng = noise_generator(spec.seed)
    schedule = ((batch, rate) for batches, rates in training_epochs(spec, len(x_all), trainer.learning_rates) for batch, rate in zip(batches, rates))
    losses, norms, out = [], {}, {}
    for step, (batch, rate) in zip(range(steps), schedule):
        noise = draw_noise(plan, noise_rng, len(batch), spec.dtype)
        stats = trainer.train_epoch([batch], np.array([rate]), noise=[noise])
        losses.append(float(stats.loss[0]))
        weights = trainer.get_weights()
        for name, value in weights.items():
            norms.setdefault(name, []).append(float(np.linalg.norm(value.astype(np.float64))))
        if step + 1 in TRAJECTORY_CHECKPOINTS or step + 1 == steps:  # the last step always
            out.update({f"trajectory/at/{step + 1}/{k}": v for k, v in weights.items()})
    out["trajectory/loss"] = np.asarray(losses)
    out.update({f"trajectory/norm/{k}": np.asarray(v) for k, v in norms.items()})
    return out


def main(argv: list[str]) -> int:
    """JOB.json names the cells; each cell's quantities go to OUT_DIR/<cell>.npz."""
    die_with_parent()
    started = clock = time.perf_counter()
    job = ProbeJob.read(Path(argv[0]))

    def lap(what: str) -> None:  # each part's time, in the probe's log
        nonlocal clock
        print(f"{what}: {time.perf_counter() - clock:.1f} s", flush=True)
        clock = time.perf_counter()

    with np.load(job.data_path) as arrays:
        data = {"x": arrays["x"], "y": arrays["y"]}
    for cell in job.cells:
        np.savez(Path(argv[1]) / f"{cell}.npz", **probe_cell(job, cell, data, lap))
    print(f"probe {job.backend} levels {job.levels}: {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
