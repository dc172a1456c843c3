"""Op-level parity: every backend x catalog entry x dtype against the NumPy float64 oracle.

Tolerances (normwise relative, see experiments.compare.relative_error): 1e-12 in float64 and
1e-6 in float32, the float32 backend compared with the float64 oracle on the same inputs.
"""

import importlib

import numpy as np
import pytest

from backends.numpy import ops as oracle
from experiments.catalog import ACTIVATIONS, LOSSES, OPTIMIZERS, Activation, Loss, Optimizer, OutputActivation
from experiments.compare import relative_error
from tests.op_cases import (
    ACTIVATION_CASES, LOSS_CASES, OPTIMIZER_CASES, activation_inputs, entry, loss_inputs, optimizer_inputs, prelu_params,
)

BACKENDS = ["torch", "keras", "jax"]
DTYPES = ["float64", "float32"]
OP_TOLERANCE = {"float64": 1e-12, "float32": 1e-6}
DISPLACEMENT_TOLERANCE = {"float64": 1e-13, "float32": 5e-5}
"""Optimizer steps, normwise relative error of the displacement w_t - w_0 (not of w_t, which the
parameters' own size would dominate). Measured worst: float64 2.2e-14 (adamw, nadam); float32
1.3e-5 (adadelta: its displacement is smallest against the parameters, whose float32 rounding is
the whole difference; adam 2.1e-6, sgd 2.5e-7). Margins of about 4x."""


def ops(backend):
    return importlib.import_module(f"backends.{backend}.ops")


def assert_close(actual, reference, dtype, what):
    error = relative_error(np.asarray(actual, dtype=np.float64), reference)
    assert error <= OP_TOLERANCE[dtype], f"{what}: relative error {error:.3e} > {OP_TOLERANCE[dtype]:.0e}"


def test_cases_cover_the_catalog():
    assert {ACTIVATION_CASES[c]["name"] for c in ACTIVATION_CASES} == set(ACTIVATIONS)
    assert {LOSS_CASES[c][0]["name"] for c in LOSS_CASES} == set(LOSSES)
    assert {OPTIMIZER_CASES[c]["name"] for c in OPTIMIZER_CASES} == set(OPTIMIZERS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ACTIVATION_CASES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_activation_values_and_gradients(backend, case, dtype):
    act = entry(Activation, ACTIVATION_CASES[case])
    x, cotangent = activation_inputs()
    x = x.astype(dtype).astype(np.float64)  # the same inputs for both sides
    params = prelu_params(case, x.shape[-1])
    cot = cotangent[:, : x.shape[-1] // act.pieces] if act.name == "maxout" else cotangent
    y, dx, dparams = ops(backend).activation_vjp(act, x.astype(dtype), cot.astype(dtype), dtype, params=params)
    ry, rdx, rdparams = oracle.activation_vjp(act, x, cot, "float64", params=params)
    assert np.asarray(y).dtype == np.dtype(dtype)
    assert_close(y, ry, dtype, f"{backend} {case} value")
    assert_close(dx, rdx, dtype, f"{backend} {case} gradient")
    for name in rdparams:
        assert_close(dparams[name], rdparams[name], dtype, f"{backend} {case} d{name}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_rrelu_training_noise(backend):
    act = entry(Activation, {"name": "rrelu", "lower": 0.1, "upper": 0.3})
    x = -np.linspace(0.5, 2.0, 4000).reshape(40, 100)
    y1, dx1, _ = ops(backend).activation_vjp(act, x, np.ones_like(x), "float64", training=True, seed=1)
    y2, _, _ = ops(backend).activation_vjp(act, x, np.ones_like(x), "float64", training=True, seed=2)
    slopes = np.asarray(y1) / x
    assert slopes.min() >= 0.1 - 1e-12 and slopes.max() <= 0.3 + 1e-12
    assert abs(slopes.mean() - 0.2) < 0.005 and slopes.std() > 0.05  # U(0.1, 0.3): mean 0.2, std 0.058
    np.testing.assert_allclose(np.asarray(dx1), slopes, rtol=1e-12)  # the gradient uses the drawn slope
    assert not np.allclose(np.asarray(y1), np.asarray(y2))  # fresh noise per draw


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", LOSS_CASES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_loss_values_and_gradients(backend, case, dtype):
    table, output, classes = LOSS_CASES[case]
    loss, out = entry(Loss, table), entry(OutputActivation, output)
    z, y = loss_inputs(classes)
    z = z.astype(dtype).astype(np.float64)
    value, dz = ops(backend).loss_vjp(loss, out, z.astype(dtype), y.astype(dtype), dtype)
    ref_value, ref_dz = oracle.loss_vjp(loss, out, z, y, "float64")
    assert_close(np.array([value]), np.array([ref_value]), dtype, f"{backend} {case} loss")
    assert_close(dz, ref_dz, dtype, f"{backend} {case} gradient")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", OPTIMIZER_CASES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_optimizer_ten_scheduled_steps(backend, case, dtype):
    optimizer = entry(Optimizer, OPTIMIZER_CASES[case])
    params, grads, rates = optimizer_inputs(case)
    params = {k: v.astype(dtype).astype(np.float64) for k, v in params.items()}
    grads = [{k: v.astype(dtype).astype(np.float64) for k, v in g.items()} for g in grads]
    got = ops(backend).optimizer_steps(optimizer, params, grads, rates, dtype)
    want = oracle.optimizer_steps(optimizer, params, grads, rates, "float64")
    assert len(got) == len(want)
    for step, (g, w) in enumerate(zip(got, want), start=1):
        for name in w:
            assert_close(g[name], w[name], dtype, f"{backend} {case} step {step} {name}")
            # The parameters dwarf ten small updates: measure the optimizer against what it moved.
            moved, want_moved = np.asarray(g[name], np.float64) - params[name], w[name] - params[name]
            error = relative_error(moved, want_moved)
            assert error <= DISPLACEMENT_TOLERANCE[dtype], f"{backend} {case} step {step} {name}: displacement off by {error:.3e}"
