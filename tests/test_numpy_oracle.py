"""The NumPy oracle's hand-written gradients against central finite differences, and its optimizer formulas."""

import numpy as np
import pytest

from backends.numpy.trainer import Trainer
from experiments.compare import relative_error
from experiments.spec import build_plan, load_spec

# Central differences with step 1e-6 in float64 are accurate to about 1e-9 relative here;
# a wrong derivative is off by O(1).
FINITE_DIFFERENCE_RTOL = 1e-6
STEP = 1e-6

TINY_CNN = [
    'model.conv=[{filters=3, kernel_size=3, padding="same", activation="tanh", batch_norm={momentum=0.9, epsilon=1e-3},'
    ' post_activation={name="leaky_relu", negative_slope=0.1}, pool={size=2, stride=2, padding="same"}},'
    ' {filters=2, kernel_size=2, padding="valid", activation="sigmoid", pool={size=3, stride=2, padding="same"}}]',
    'model.hidden=[{units=6, activation="relu", batch_norm={momentum=0.9, epsilon=1e-5}}]',
]
CASES = {
    "mlp-softmax-ce": ("mlp-relu-adam", ['model.hidden=[{units=7, activation="tanh"}, {units=5, activation={name="leaky_relu", negative_slope=0.2}}]',
                                          "loss={name=\"categorical_crossentropy\", label_smoothing=0.1}"]),
    "mlp-sigmoid-ce": ("seed-mlp-sigmoid", ['model.hidden=[{units=6, activation="sigmoid"}]']),
    "mlp-softmax-mse": ("mlp-relu-adam", ['model.hidden=[{units=6, activation="sigmoid"}]', 'loss="mse"']),
    "mlp-sigmoid-mse": ("seed-mlp-sigmoid", ['model.hidden=[{units=6, activation="tanh"}]', 'loss="mse"']),
    "mlp-linear-mse": ("mlp-relu-adam", ['model.hidden=[{units=6, activation="tanh"}]', 'loss="mse"', 'model.output_activation="linear"']),
    "cnn-bn-pool": ("seed-cnn", TINY_CNN),
}


def numeric_gradient(trainer, x, y, name, indices):
    values = []
    for index in indices:
        original = trainer.weights[name][index]
        trainer.weights[name][index] = original + STEP
        up = trainer.forward_backward(x, y, {})[0].mean()
        trainer.weights[name][index] = original - STEP
        down = trainer.forward_backward(x, y, {})[0].mean()
        trainer.weights[name][index] = original
        values.append((up - down) / (2 * STEP))
    return np.array(values)


@pytest.mark.parametrize("case", CASES)
def test_gradients_match_finite_differences(case):
    preset, overrides = CASES[case]
    spec = load_spec(preset, overrides + ['dtype="float64"'])
    plan = build_plan(spec.model, (28, 28, 1), 10)
    trainer = Trainer(spec, plan, 1)
    rng = np.random.default_rng(1)
    x = rng.random((4, 28, 28, 1))
    y = np.eye(10)[rng.integers(0, 10, 4)]
    _, _, grads, _ = trainer.forward_backward(x, y, {})
    for name in trainer.trainable_names:
        flat = [np.unravel_index(i, grads[name].shape) for i in rng.choice(grads[name].size, min(12, grads[name].size), replace=False)]
        analytic = np.array([grads[name][i] for i in flat])
        numeric = numeric_gradient(trainer, x, y, name, flat)
        error = relative_error(analytic, numeric) if np.max(np.abs(numeric)) > 1e-8 else float(np.max(np.abs(analytic - numeric)))
        assert error <= FINITE_DIFFERENCE_RTOL, f"{case} {name}: gradient relative error {error:.2e}"


def test_max_pool_same_with_odd_size_routes_gradient_once():
    """7 -> 4 with SAME padding (2x2, stride 2; TF pads 0 above and 1 below): each output's cotangent goes
    to the largest real input of its window, worked out here window by window; the padded row and
    column (-inf) never win even though every real input is negative; and the gradient is the
    central difference of sum(dy * y)."""
    from backends.numpy import model as numpy_model
    from experiments.spec import plan as P

    layer = P.MaxPool2D(name="max_pool_0", input_shape=(7, 7, 2), output_shape=(4, 4, 2), where="test",
                        size=2, stride=2, padding="same")
    rng = np.random.default_rng(2)
    x = -1.0 - rng.permutation(2 * 7 * 7 * 2).reshape(2, 7, 7, 2) / 10.0  # distinct and all below the padding's 0
    dy = rng.normal(size=(2, 4, 4, 2))
    y, cache = numpy_model.layer_forward(layer, {}, x, True, {})
    dx, grads = numpy_model.layer_backward(layer, {}, cache, dy)
    assert y.shape == (2, 4, 4, 2) and dx.shape == x.shape and grads == {}
    expected_y, expected_dx = np.zeros_like(y), np.zeros_like(x)
    for n in range(2):
        for i in range(4):
            for j in range(4):
                for c in range(2):
                    window = x[n, 2 * i : min(2 * i + 2, 7), 2 * j : min(2 * j + 2, 7), c]  # row/column 7 is padding
                    r, q = np.unravel_index(np.argmax(window), window.shape)
                    expected_y[n, i, j, c] = window[r, q]
                    expected_dx[n, 2 * i + r, 2 * j + q, c] += dy[n, i, j, c]
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(dx, expected_dx)
    assert dx.sum() == pytest.approx(dy.sum(), rel=1e-12)  # every cotangent lands on a real input, once
    numeric = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[index] += STEP
        down[index] -= STEP
        numeric[index] = (np.sum(dy * numpy_model.layer_forward(layer, {}, up, True, {})[0])
                          - np.sum(dy * numpy_model.layer_forward(layer, {}, down, True, {})[0])) / (2 * STEP)
    error = relative_error(dx, numeric)
    assert error <= FINITE_DIFFERENCE_RTOL, f"max-pool gradient against central differences: {error:.2e}"


from backends.numpy import ops as oracle_ops  # noqa: E402
from experiments.catalog import Activation, Loss, OutputActivation  # noqa: E402
from tests.op_cases import ACTIVATION_CASES, LOSS_CASES, entry, loss_inputs, prelu_params  # noqa: E402

KINKS = (0.0, -3.0, 3.0)
FORWARD_ONLY = {"step", "sign"}


def _away_from_kinks(rng, shape):
    x = rng.normal(0, 3, shape)
    for kink in KINKS:
        x = np.where(np.abs(x - kink) < 1e-2, x + 0.05, x)
    return x


@pytest.mark.parametrize("case", [c for c in ACTIVATION_CASES if ACTIVATION_CASES[c]["name"] not in FORWARD_ONLY])
def test_activation_gradient_matches_finite_differences(case):
    act = entry(Activation, ACTIVATION_CASES[case])
    rng = np.random.default_rng(4)
    x = _away_from_kinks(rng, (3, 12))
    params = prelu_params(case, 12)
    out_features = 12 // act.pieces if act.name == "maxout" else 12
    cot = rng.normal(0, 1, (3, out_features))
    _, dx, dparams = oracle_ops.activation_vjp(act, x, cot, "float64", params=params)
    f = lambda x_, p_=params: float(np.sum(oracle_ops.activation_vjp(act, x_, cot, "float64", params=p_)[0] * cot))  # noqa: E731
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += STEP
        down[index] -= STEP
        numeric[index] = (f(up) - f(down)) / (2 * STEP)
    assert relative_error(dx, numeric) <= FINITE_DIFFERENCE_RTOL, case
    for name, value in (params or {}).items():
        numeric_p = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            up, down = dict(params), dict(params)
            up[name], down[name] = value.copy(), value.copy()
            up[name][index] += STEP
            down[name][index] -= STEP
            numeric_p[index] = (f(x, up) - f(x, down)) / (2 * STEP)
        assert relative_error(dparams[name], numeric_p) <= FINITE_DIFFERENCE_RTOL, f"{case} d{name}"


@pytest.mark.parametrize("case", LOSS_CASES)
def test_loss_gradient_matches_finite_differences(case):
    table, output, classes = LOSS_CASES[case]
    loss, out = entry(Loss, table), entry(OutputActivation, output)
    z, y = loss_inputs(classes)
    z[0, 0] = 3.0  # keep every probability well away from 0 and 1 for the difference quotient
    _, dz = oracle_ops.loss_vjp(loss, out, z, y, "float64")
    numeric = np.zeros_like(z)
    for index in np.ndindex(z.shape):
        up, down = z.copy(), z.copy()
        up[index] += STEP
        down[index] -= STEP
        numeric[index] = (oracle_ops.loss_vjp(loss, out, up, y, "float64")[0] - oracle_ops.loss_vjp(loss, out, down, y, "float64")[0]) / (2 * STEP)
    assert relative_error(dz, numeric) <= FINITE_DIFFERENCE_RTOL, case


def test_seed_softmax_vector():
    """Seed article 004: softmax([1, 2, 5, 3]) = [0.0152, 0.0414, 0.8310, 0.1125] (4 decimals)."""
    from backends.numpy.losses import output_activation

    np.testing.assert_allclose(output_activation("softmax", np.array([[1.0, 2.0, 5.0, 3.0]]))[0], [0.0152, 0.0414, 0.8310, 0.1125], atol=5e-5)


def test_kl_equals_cross_entropy_for_one_hot_targets():
    z, y = loss_inputs(10)
    kl = oracle_ops.loss_vjp(entry(Loss, "kl_divergence"), entry(OutputActivation, "softmax"), z, y, "float64")
    ce = oracle_ops.loss_vjp(entry(Loss, "categorical_crossentropy"), entry(OutputActivation, "softmax"), z, y, "float64")
    assert abs(kl[0] - ce[0]) <= 1e-15 * abs(ce[0]) and relative_error(kl[1], ce[1]) == 0.0
